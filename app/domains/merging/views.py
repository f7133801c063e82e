"""Duplicates to merge or dismiss: POST /api/leads/{id}/merge and .../duplicates/{other}/dismiss."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.leads.schemas import LeadOut
from app.domains.merging import schemas, service
from app.platform.access import requires
from app.platform.api import make_blueprint, with_etag
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("merging", "Duplicates: merge two leads of one family, or dismiss a suggestion")


@blp.route("/leads/<int:lead_id>/merge")
class MergeLead(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.MergeIn)
    @blp.response(200, LeadOut)
    @blp.alt_response(404, description="Either lead is not found (another clinic's included)")
    @blp.alt_response(
        409, description="merge_into_itself, already_merged (either lead), or lead_converted (either lead)"
    )
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Merge `from_lead_id` into this lead: this lead keeps its fields and takes the other's where
        its own are empty; the other's activities, tasks, consultations, conversation, enrollments,
        steps, clocks and notifications move here (two active enrollments: this lead's is kept; two
        threads: the messages join this lead's); the other is archived with `merged_into_id` and its
        pending jobs cancelled. One transaction; audited; `lead.merged` event."""
        lead = service.merge(
            session=uow, actor=actor, lead_id=lead_id, from_lead_id=body["from_lead_id"], now=now
        )
        return with_etag(lead, LeadOut())


@blp.route("/leads/<int:lead_id>/duplicates/<int:other_id>/dismiss")
class DismissDuplicate(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.DismissedOut)
    @blp.alt_response(404, description="Either lead is not found (another clinic's included)")
    @blp.alt_response(409, description="merge_into_itself: both ids name the same lead")
    @inject
    def post(self, lead_id, other_id, *, uow, actor, now):
        """Not the same family: the two leads are never suggested as each other's duplicates again
        (either order). Idempotent."""
        return service.dismiss(session=uow, actor=actor, lead_id=lead_id, other_id=other_id, now=now)
