"""Lead endpoints: list, read, update; lead sources. Creating a lead is in app/domains/intake."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.leads import export, listing, schemas, service, sources
from app.platform.access import requires
from app.platform.api import check_if_match, make_blueprint, set_item_count, with_etag
from app.platform.api.injection import inject, streamed
from app.platform.csv_export import csv_stream
from app.platform.db import PageRequest
from app.platform.roles import Permission

blp = make_blueprint("leads", "Leads and lead sources")

# An instance, not the class: webargs would instantiate the class on every board read.
LEAD_QUERY_ARGS = schemas.LeadQueryArgs()


@blp.route("/leads")
class Leads(MethodView):
    @requires(Permission.READ)
    @blp.arguments(LEAD_QUERY_ARGS, location="query")
    @blp.response(200, schemas.LeadOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, pagination_parameters, *, uow, actor, now):
        """The clinic's leads: filter by stage, status, assigned_to, source, created range, q, stale
        and next_step; sort."""
        sort = args.pop("sort")
        leads, total = listing.list_leads(
            session=uow,
            actor=actor,
            filters=args,
            sort=sort,
            paging=PageRequest.of(pagination_parameters),
            now=now,
        )
        set_item_count(pagination_parameters, total)
        return leads


@blp.route("/leads/search")
class LeadsSearch(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.LeadSearchArgs(), location="query")
    @blp.response(200, schemas.LeadMatchOut(many=True))
    @inject
    def get(self, args, *, uow, actor, now):
        """Search as you type: the first `limit` leads matching `q`, newest first, and no total (the
        list's `q` over the same fields, for the same reader; cheap at any number of matches). The
        search is audited."""
        return listing.search_leads(session=uow, actor=actor, q=args["q"], limit=args["limit"], now=now)


@blp.route("/leads/export")
class LeadsExport(MethodView):
    @requires(Permission.READ)
    @blp.arguments(LEAD_QUERY_ARGS, location="query")
    @blp.response(200, content_type="text/csv", description="The leads as CSV, streamed")
    @inject
    def get(self, args, *, uow, actor, now):
        """The leads of the list's filters as CSV, streamed (any number of rows); the export is audited.
        Protected columns (patient, insurance, address, notes) only for a reader with `lead:phi`."""
        sort = args.pop("sort")
        columns = export.start(session=uow, actor=actor, filters=args, now=now)
        rows = streamed(
            lambda stream_uow: export.rows(
                session=stream_uow, actor=actor, filters=args, sort=sort, columns=columns
            )
        )
        return csv_stream("leads", columns, rows)


@blp.route("/leads/<int:lead_id>")
class LeadById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.LeadOut)
    @inject
    def get(self, lead_id, *, uow, actor, now):
        """One lead (protected fields decrypted); the read is audited."""
        lead = service.read_lead(session=uow, actor=actor, lead_id=lead_id, now=now)
        return with_etag(lead, schemas.LeadOut())

    @requires(Permission.UPDATE)
    @blp.arguments(schemas.LeadUpdateIn)
    @blp.response(200, schemas.LeadOut)
    @blp.alt_response(409, description="The lead is converted (locked)")
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    @inject
    def put(self, body, lead_id, *, uow, actor, now):
        """Change a lead's details; send If-Match with the ETag you read to avoid lost updates."""
        # Locked before the ETag check: nobody can commit between the check and the change.
        current = service.get_lead(session=uow, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
        check_if_match(current, schemas.LeadOut())
        lead = service.update_lead(session=uow, actor=actor, lead_id=lead_id, changes=body, now=now)
        return with_etag(lead, schemas.LeadOut())


@blp.route("/lead-sources")
class LeadSources(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.LeadSourceQueryArgs, location="query")
    @blp.response(200, schemas.LeadSourceOut(many=True))
    @inject
    def get(self, args, *, uow, actor):
        """The clinic's lead sources (a short list: not paged)."""
        return sources.list_sources(
            session=uow,
            actor=actor,
            category=args.get("category"),
            is_active=args.get("is_active"),
        )

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.LeadSourceIn)
    @blp.response(201, schemas.LeadSourceOut)
    @blp.alt_response(409, description="The name is taken in this clinic")
    @inject
    def post(self, body, *, uow, actor, now):
        """Create a lead source."""
        return sources.create_source(session=uow, actor=actor, data=body, now=now)


@blp.route("/lead-sources/<int:source_id>")
class LeadSourceById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.LeadSourceOut)
    @inject
    def get(self, source_id, *, uow, actor):
        """One lead source."""
        source = sources.get_source(session=uow, clinic_id=actor.clinic_id, source_id=source_id)
        return with_etag(source, schemas.LeadSourceOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.LeadSourceUpdateIn)
    @blp.response(200, schemas.LeadSourceOut)
    @blp.alt_response(409, description="The name is taken in this clinic")
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    @inject
    def put(self, body, source_id, *, uow, actor, now):
        """Change a lead source (name, category, cost, active, coordinators)."""
        current = sources.get_source(
            session=uow, clinic_id=actor.clinic_id, source_id=source_id, for_update=True
        )
        check_if_match(current, schemas.LeadSourceOut())
        source = sources.update_source(session=uow, actor=actor, source_id=source_id, data=body, now=now)
        return with_etag(source, schemas.LeadSourceOut())
