"""Intelligence endpoints: a lead's best contact times, the conversion forecast, my next call with why."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.api import make_blueprint
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.intelligence import contact_times, next_call, schemas, service

blp = make_blueprint(
    "intelligence", "Follow-up intelligence: contact times, conversion forecast, my next call with why"
)


@blp.route("/leads/<int:lead_id>/best-contact-times")
class BestContactTimes(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.BestContactTimesOut)
    @blp.alt_response(404, description="No such lead in your clinic")
    def get(self, lead_id):
        """The next three open hours most likely to get the call answered, with rates and sample sizes."""
        with unit_of_work() as session:
            return contact_times.best_contact_times(
                session=session, actor=current_actor(), lead_id=lead_id, now=clock.now()
            )


@blp.route("/leads/analytics/forecast")
class Forecast(MethodView):
    @requires(Permission.ANALYTICS)
    @blp.arguments(schemas.ForecastArgs, location="query")
    @blp.response(200, schemas.ForecastOut)
    def get(self, args):
        """Expected conversions per month: the pipeline by stage plus a seasonal baseline of new leads."""
        with unit_of_work() as session:
            return service.forecast(
                session=session, actor=current_actor(), now=clock.now(), months=args["months"]
            )


@blp.route("/me/next-task")
class NextTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.NextTaskOut)
    @blp.alt_response(204, description="Nothing left to work")
    def post(self):
        """My next call: claim the most urgent open task I may work, for a lease (the clinic's
        next_task_lease_minutes, default 10), with why this one (overdue by, the lead's SLA clock
        and the time left, its score, the best time to call). Mine first (one I already hold,
        then those due within the hour), then teammates' unclaimed overdue tasks (unless the clinic
        turned next_task_team_overdue off), then my later ones. Completing, snoozing or cancelling
        the task releases it, as does the lease ending."""
        with unit_of_work() as session:
            claim = next_call.next_task(session=session, actor=current_actor(), now=clock.now())
            if claim is None:
                return Response(status=204)
            return claim


@blp.route("/me/next-task/<int:task_id>/renew")
class RenewNextTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.NextTaskOut)
    @blp.alt_response(404, description="No such task in your clinic")
    @blp.alt_response(409, description="The task is not claimed by the caller (taken by another, or closed)")
    def post(self, task_id):
        """Keep the task I hold for another lease (with why, as next-task)."""
        with unit_of_work() as session:
            return next_call.renew(session=session, actor=current_actor(), task_id=task_id, now=clock.now())
