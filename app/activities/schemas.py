"""Request and response schemas of the activity log."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.activities.models import ActivityDirection, ActivityType, CallOutcome
from app.api import RequestSchema, UTCDateTime


class ActivityIn(RequestSchema):
    """An interaction to log. STAGE_CHANGE, ASSIGNMENT_CHANGE and TASK_COMPLETED are system-only."""

    type = fields.String(required=True, validate=validate.OneOf([t.value for t in ActivityType]))
    direction = fields.String(
        allow_none=True,
        validate=validate.OneOf([d.value for d in ActivityDirection]),
        metadata={"description": "Required for PHONE_CALL, EMAIL and SMS"},
    )
    outcome = fields.String(
        allow_none=True,
        validate=validate.OneOf([o.value for o in CallOutcome]),
        metadata={"description": "Phone calls only; required for OUTBOUND calls"},
    )
    notes = fields.String(allow_none=True, validate=validate.Length(max=10000))
    duration_minutes = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(min=0, max=24 * 60)
    )
    occurred_at = UTCDateTime(
        allow_none=True,
        metadata={"description": "When it happened (default now); never in the future. Naive means UTC."},
    )


class ActivityQueryArgs(RequestSchema):
    type = fields.List(
        fields.String(validate=validate.OneOf([t.value for t in ActivityType])),
        validate=validate.Length(max=50),
        metadata={"description": "Only these types (repeat the parameter for several)"},
    )


class ActivityOut(Schema):
    id = fields.Integer()
    lead_id = fields.Integer()
    type = fields.String()
    direction = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    duration_minutes = fields.Integer(allow_none=True)
    previous_stage = fields.String(allow_none=True)
    new_stage = fields.String(allow_none=True)
    details = fields.Dict(
        allow_none=True, metadata={"description": "Assignment: from_user_id, to_user_id, reason"}
    )
    occurred_at = fields.DateTime()
    created_at = fields.DateTime()
    created_by = fields.Integer(
        attribute="created_by_id", allow_none=True, metadata={"description": "User id"}
    )
    actor = fields.String(metadata={"description": "user:<id>, api_key:<id>, system or web_form"})
