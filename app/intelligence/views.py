"""Intelligence endpoints: a lead's best contact times, the conversion forecast."""

from __future__ import annotations

from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.api import make_blueprint
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.intelligence import contact_times, schemas, service

blp = make_blueprint("intelligence", "Follow-up intelligence: contact times, conversion forecast")


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
