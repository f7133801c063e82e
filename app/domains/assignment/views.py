"""Manual assignment of a lead."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.assignment import schemas, service
from app.domains.leads.schemas import LeadOut
from app.platform.access import requires
from app.platform.api import make_blueprint, with_etag
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("assignment", "Assigning leads to coordinators")


@blp.route("/leads/<int:lead_id>/assign")
class AssignLead(MethodView):
    @requires(Permission.ASSIGN)
    @blp.arguments(schemas.AssignIn)
    @blp.response(200, LeadOut)
    @blp.alt_response(409, description="The lead is converted (locked)")
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Give a lead to a coordinator (or a clinic admin)."""
        lead = service.assign_lead(
            session=uow,
            actor=actor,
            lead_id=lead_id,
            user_id=body["user_id"],
            reason=body.get("reason"),
            now=now,
        )
        return with_etag(lead, LeadOut())
