"""SLA endpoints: a lead's clocks."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.tasks.sla import schemas, service
from app.platform.access import requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("sla", "SLA clocks: speed to lead and first response")


@blp.route("/leads/<int:lead_id>/sla")
class LeadSla(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.SlaClockOut(many=True))
    @inject
    def get(self, lead_id, *, uow, actor):
        """The lead's SLA clocks: pending, warning, breached, met or cancelled, with their times."""
        return service.clocks_of(session=uow, clinic_id=actor.clinic_id, lead_id=lead_id)
