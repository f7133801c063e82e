"""Intelligence endpoints: a lead's best contact times, the conversion forecast, my next call with why."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from app.domains.intelligence import contact_times, next_call, schemas, service
from app.platform.access import requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.errors import Conflict
from app.platform.roles import Permission

blp = make_blueprint(
    "intelligence", "Follow-up intelligence: contact times, conversion forecast, my next call with why"
)


@blp.route("/leads/<int:lead_id>/best-contact-times")
class BestContactTimes(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.BestContactTimesOut)
    @blp.alt_response(404, description="No such lead in your clinic")
    @inject
    def get(self, lead_id, *, uow, actor, now):
        """The next three open hours most likely to get the call answered, with rates and sample sizes."""
        return contact_times.best_contact_times(session=uow, actor=actor, lead_id=lead_id, now=now)


@blp.route("/leads/analytics/forecast")
class Forecast(MethodView):
    @requires(Permission.ANALYTICS)
    @blp.arguments(schemas.ForecastArgs, location="query")
    @blp.response(200, schemas.ForecastOut)
    @inject
    def get(self, args, *, uow, actor, now):
        """Expected conversions per month: the pipeline by stage plus a seasonal baseline of new leads."""
        return service.forecast(session=uow, actor=actor, now=now, months=args["months"])


@blp.route("/me/next-task")
class NextTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.NextTaskOut)
    @blp.alt_response(204, description="Nothing left to work")
    @inject
    def post(self, *, uow, actor, now):
        """My next call: claim the most urgent open task I may work, for a lease (the clinic's
        next_task_lease_minutes, default 10), with why this one (overdue by, the lead's SLA clock
        and the time left, its score, the best time to call). Mine first (one I already hold,
        then those due within the hour), then teammates' unclaimed overdue tasks (unless the clinic
        turned next_task_team_overdue off), then my later ones. Completing, snoozing or cancelling
        the task releases it, as does the lease ending."""
        claim = next_call.next_task(session=uow, actor=actor, now=now)
        if claim is None:
            return Response(status=204)
        return claim


@blp.route("/me/next-task/<int:task_id>/renew")
class RenewNextTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.NextTaskOut)
    @blp.alt_response(404, description="No such task in your clinic")
    @blp.alt_response(409, description="The task is not claimed by the caller (taken by another, or closed)")
    @inject
    def post(self, task_id, *, uow, actor, now):
        """Keep the task I hold for another lease (with why, as next-task)."""
        return next_call.renew(session=uow, actor=actor, task_id=task_id, now=now)


@blp.route("/me/next-task/<int:task_id>/release")
class ReleaseNextTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(204)
    @blp.alt_response(404, description="No such task in your clinic")
    @blp.alt_response(
        409, description="The task is not claimed by you (lease ended, taken by another, or closed)"
    )
    @inject
    def post(self, task_id, *, uow, actor, now):
        """Give back the task I hold: anyone's next-task may hand it out again."""
        if not next_call.release(session=uow, actor=actor, task_id=task_id, now=now):
            raise Conflict(f"task {task_id} is not claimed by you", code="task_not_claimed")
        return Response(status=204)
