"""SLA endpoints: a lead's clocks."""

from __future__ import annotations

from flask.views import MethodView

from app.access import requires
from app.api import make_blueprint
from app.api.injection import inject
from app.auth.roles import Permission
from app.sla import schemas, service

blp = make_blueprint("sla", "SLA clocks: speed to lead and first response")


@blp.route("/leads/<int:lead_id>/sla")
class LeadSla(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.SlaClockOut(many=True))
    @inject
    def get(self, lead_id, *, uow, actor):
        """The lead's SLA clocks: pending, warning, breached, met or cancelled, with their times."""
        return service.clocks_of(session=uow, clinic_id=actor.clinic_id, lead_id=lead_id)
