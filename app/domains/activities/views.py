"""The activity log of a lead: log an interaction, read the timeline."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.activities import feed, schemas, service
from app.platform.access import requires
from app.platform.api import make_blueprint, set_item_count
from app.platform.api.injection import inject
from app.platform.db import PageRequest
from app.platform.idempotency.web import idempotent
from app.platform.roles import Permission

blp = make_blueprint("activities", "The activity log of a lead, and the clinic-wide feed")


@blp.route("/leads/<int:lead_id>/activities")
class LeadActivities(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.ActivityQueryArgs, location="query")
    @blp.response(200, schemas.ActivityOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, lead_id, pagination_parameters, *, uow, actor, now):
        """The lead's timeline, newest first."""
        rows, total = service.list_activities(
            session=uow,
            actor=actor,
            lead_id=lead_id,
            types=args.get("type"),
            paging=PageRequest.of(pagination_parameters),
            now=now,
        )
        set_item_count(pagination_parameters, total)
        return rows

    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(schemas.ActivityIn)
    @blp.response(201, schemas.ActivityOut)
    @blp.alt_response(409, description="The lead is converted (locked)")
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Log an interaction: a call with its outcome, an email, an SMS, a meeting, a note, ..."""
        return service.log_activity(session=uow, actor=actor, lead_id=lead_id, data=body, now=now)


@blp.route("/activities")
class ClinicActivities(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.FeedArgs, location="query")
    @blp.response(200, schemas.ActivityOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, pagination_parameters, *, uow, actor, now):
        """The clinic-wide activity feed, newest first: filter by lead, type, direction, who, when.
        The read is audited."""
        rows, total = feed.clinic_feed(
            session=uow,
            actor=actor,
            filters=args,
            paging=PageRequest.of(pagination_parameters),
            now=now,
        )
        set_item_count(pagination_parameters, total)
        return rows


@blp.route("/activities/<int:activity_id>")
class ActivityById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.ActivityOut)
    @inject
    def get(self, activity_id, *, uow, actor, now):
        """One activity (another clinic's is a 404). The read is audited."""
        return feed.get_activity(session=uow, actor=actor, activity_id=activity_id, now=now)
