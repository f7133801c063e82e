"""Privacy endpoints: erase a lead's person on request."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields

from app.domains.privacy import erasure
from app.platform.access import requires
from app.platform.answers import AnswerSchema
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("privacy", "Erasure of a person's data")


class ErasureOut(AnswerSchema):
    lead_id = fields.Integer()
    erased_at = fields.DateTime()
    suppressed = fields.Boolean(metadata={"description": "phones and email on the suppression list"})
    jobs_cancelled = fields.Integer()
    timers_cancelled = fields.Integer(
        metadata={"description": "the lead's scheduled recalls and records reminder"}
    )
    consultations_cancelled = fields.Integer(
        metadata={"description": "the lead's scheduled consultations (every one also loses its external_id)"}
    )
    activities = fields.Integer()
    further_patients = fields.Integer(
        metadata={"description": "the lead's patients after its first, deleted"}
    )
    tasks = fields.Integer()
    notifications = fields.Integer()
    events = fields.Integer()
    webhook_deliveries = fields.Integer()
    import_payloads = fields.Integer(metadata={"description": "import chunks that lost the person's rows"})
    import_reports = fields.Integer(metadata={"description": "import report rows about the person"})
    audit_events = fields.Integer()
    idempotent_answers = fields.Integer()


@blp.route("/leads/<int:lead_id>/erase")
class LeadErasure(MethodView):
    @requires(Permission.ERASE)
    @blp.response(200, ErasureOut)
    @inject
    def post(self, lead_id, *, uow, actor, now):
        """Erase the lead's personal and health data everywhere it was copied; an anonymised
        tombstone stays for analytics, and its phone and email are never contacted again.
        Audited; repeating it is harmless."""
        return erasure.erase(
            session=uow,
            clinic_id=actor.clinic_id,
            lead_id=lead_id,
            actor_ref=actor.ref,
            now=now,
        )
