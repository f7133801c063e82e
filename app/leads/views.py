"""Lead endpoints: list, read, update; lead sources. Creating a lead is in app/intake."""

from __future__ import annotations

from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.api import check_if_match, make_blueprint, set_item_count, with_etag
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.csv_export import csv_stream
from app.leads import export, listing, schemas, service, sources

blp = make_blueprint("leads", "Leads and lead sources")

# An instance, not the class: webargs would instantiate the class on every board read.
LEAD_QUERY_ARGS = schemas.LeadQueryArgs()


@blp.route("/leads")
class Leads(MethodView):
    @requires(Permission.READ)
    @blp.arguments(LEAD_QUERY_ARGS, location="query")
    @blp.response(200, schemas.LeadOut(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The clinic's leads: filter by stage, status, assigned_to, source, created range, q, stale
        and next_step; sort."""
        sort = args.pop("sort")
        with unit_of_work() as session:
            leads, total = listing.list_leads(
                session=session,
                actor=current_actor(),
                filters=args,
                sort=sort,
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
                now=clock.now(),
            )
        set_item_count(pagination_parameters, total)
        return leads


@blp.route("/leads/export")
class LeadsExport(MethodView):
    @requires(Permission.READ)
    @blp.arguments(LEAD_QUERY_ARGS, location="query")
    @blp.response(200, content_type="text/csv", description="The leads as CSV, streamed")
    def get(self, args):
        """The leads of the list's filters as CSV, streamed (any number of rows); the export is audited.
        Protected columns (patient, insurance, address, notes) only for a reader with `lead:phi`."""
        actor, sort = current_actor(), args.pop("sort")
        with unit_of_work() as session:
            columns = export.start(session=session, actor=actor, filters=args, now=clock.now())

        def rows():
            with unit_of_work() as session:
                yield from export.rows(session=session, actor=actor, filters=args, sort=sort, columns=columns)

        return csv_stream("leads", columns, rows())


@blp.route("/leads/<int:lead_id>")
class LeadById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.LeadOut)
    def get(self, lead_id):
        """One lead (protected fields decrypted); the read is audited."""
        with unit_of_work() as session:
            lead = service.read_lead(session=session, actor=current_actor(), lead_id=lead_id, now=clock.now())
            return with_etag(lead, schemas.LeadOut())

    @requires(Permission.UPDATE)
    @blp.arguments(schemas.LeadUpdateIn)
    @blp.response(200, schemas.LeadOut)
    @blp.alt_response(409, description="The lead is converted (locked)")
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    def put(self, body, lead_id):
        """Change a lead's details; send If-Match with the ETag you read to avoid lost updates."""
        actor = current_actor()
        with unit_of_work() as session:
            # Locked before the ETag check: nobody can commit between the check and the change.
            current = service.get_lead(
                session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True
            )
            check_if_match(current, schemas.LeadOut())
            lead = service.update_lead(
                session=session, actor=actor, lead_id=lead_id, changes=body, now=clock.now()
            )
            return with_etag(lead, schemas.LeadOut())


@blp.route("/lead-sources")
class LeadSources(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.LeadSourceQueryArgs, location="query")
    @blp.response(200, schemas.LeadSourceOut(many=True))
    def get(self, args):
        """The clinic's lead sources (a short list: not paged)."""
        with unit_of_work() as session:
            return sources.list_sources(
                session=session,
                actor=current_actor(),
                category=args.get("category"),
                is_active=args.get("is_active"),
            )

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.LeadSourceIn)
    @blp.response(201, schemas.LeadSourceOut)
    @blp.alt_response(409, description="The name is taken in this clinic")
    def post(self, body):
        """Create a lead source."""
        with unit_of_work() as session:
            return sources.create_source(session=session, actor=current_actor(), data=body, now=clock.now())


@blp.route("/lead-sources/<int:source_id>")
class LeadSourceById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.LeadSourceOut)
    def get(self, source_id):
        """One lead source."""
        with unit_of_work() as session:
            source = sources.get_source(
                session=session, clinic_id=current_actor().clinic_id, source_id=source_id
            )
            return with_etag(source, schemas.LeadSourceOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.LeadSourceUpdateIn)
    @blp.response(200, schemas.LeadSourceOut)
    @blp.alt_response(409, description="The name is taken in this clinic")
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    def put(self, body, source_id):
        """Change a lead source (name, category, cost, active, coordinators)."""
        actor = current_actor()
        with unit_of_work() as session:
            current = sources.get_source(
                session=session, clinic_id=actor.clinic_id, source_id=source_id, for_update=True
            )
            check_if_match(current, schemas.LeadSourceOut())
            source = sources.update_source(
                session=session, actor=actor, source_id=source_id, data=body, now=clock.now()
            )
            return with_etag(source, schemas.LeadSourceOut())
