"""SLA endpoints: a lead's clocks."""

from __future__ import annotations

from flask.views import MethodView

from app.access import current_actor, requires
from app.api import make_blueprint
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.sla import schemas, service

blp = make_blueprint("sla", "SLA clocks: speed to lead and first response")


@blp.route("/leads/<int:lead_id>/sla")
class LeadSla(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.SlaClockOut(many=True))
    def get(self, lead_id):
        """The lead's SLA clocks: pending, warning, breached, met or cancelled, with their times."""
        with unit_of_work() as session:
            return service.clocks_of(session=session, clinic_id=current_actor().clinic_id, lead_id=lead_id)
