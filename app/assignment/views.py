"""Manual assignment of a lead."""

from __future__ import annotations

from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.api import make_blueprint, with_etag
from app.app_db import unit_of_work
from app.assignment import schemas, service
from app.auth.roles import Permission
from app.leads.schemas import LeadOut

blp = make_blueprint("assignment", "Assigning leads to coordinators")


@blp.route("/leads/<int:lead_id>/assign")
class AssignLead(MethodView):
    @requires(Permission.ASSIGN)
    @blp.arguments(schemas.AssignIn)
    @blp.response(200, LeadOut)
    @blp.alt_response(409, description="The lead is converted (locked)")
    def post(self, body, lead_id):
        """Give a lead to a coordinator (or a clinic admin)."""
        with unit_of_work() as session:
            lead = service.assign_lead(
                session=session,
                actor=current_actor(),
                lead_id=lead_id,
                user_id=body["user_id"],
                reason=body.get("reason"),
                now=clock.now(),
            )
            return with_etag(lead, LeadOut())
