"""Response schema of a lead's SLA clocks."""

from marshmallow import fields

from app.platform.answers import AnswerSchema


class SlaClockOut(AnswerSchema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "speed_to_lead or first_response"})
    status = fields.String(metadata={"description": "pending, warning, breached, met or cancelled"})
    started_at = fields.DateTime()
    warn_at = fields.DateTime()
    due_at = fields.DateTime()
    target_minutes = fields.Integer(metadata={"description": "business minutes"})
    warned_at = fields.DateTime(allow_none=True)
    breached_at = fields.DateTime(allow_none=True)
    settled_at = fields.DateTime(allow_none=True)
    settled_reason = fields.String(allow_none=True)
