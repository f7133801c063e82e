"""The activity log of a lead: log an interaction, read the timeline."""

from __future__ import annotations

from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.activities import feed, schemas, service
from app.api import make_blueprint, set_item_count
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.idempotency.web import idempotent

blp = make_blueprint("activities", "The activity log of a lead, and the clinic-wide feed")


@blp.route("/leads/<int:lead_id>/activities")
class LeadActivities(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.ActivityQueryArgs, location="query")
    @blp.response(200, schemas.ActivityOut(many=True))
    @blp.paginate()
    def get(self, args, lead_id, pagination_parameters):
        """The lead's timeline, newest first."""
        with unit_of_work() as session:
            rows, total = service.list_activities(
                session=session,
                actor=current_actor(),
                lead_id=lead_id,
                types=args.get("type"),
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
                now=clock.now(),
            )
        set_item_count(pagination_parameters, total)
        return rows

    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(schemas.ActivityIn)
    @blp.response(201, schemas.ActivityOut)
    @blp.alt_response(409, description="The lead is converted (locked)")
    def post(self, body, lead_id):
        """Log an interaction: a call with its outcome, an email, an SMS, a meeting, a note, ..."""
        with unit_of_work() as session:
            return service.log_activity(
                session=session, actor=current_actor(), lead_id=lead_id, data=body, now=clock.now()
            )


@blp.route("/activities")
class ClinicActivities(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.FeedArgs, location="query")
    @blp.response(200, schemas.ActivityOut(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The clinic-wide activity feed, newest first: filter by lead, type, direction, who, when.
        The read is audited."""
        with unit_of_work() as session:
            rows, total = feed.clinic_feed(
                session=session,
                actor=current_actor(),
                filters=args,
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
                now=clock.now(),
            )
        set_item_count(pagination_parameters, total)
        return rows


@blp.route("/activities/<int:activity_id>")
class ActivityById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.ActivityOut)
    def get(self, activity_id):
        """One activity (another clinic's is a 404). The read is audited."""
        with unit_of_work() as session:
            return feed.get_activity(
                session=session, actor=current_actor(), activity_id=activity_id, now=clock.now()
            )
