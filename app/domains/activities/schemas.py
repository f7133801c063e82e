"""Request and response schemas of the activity log."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from app.domains.activities.models import ActivityDirection, ActivityType, CallOutcome
from app.domains.activities.service import LOST_REASONS
from app.platform.api import RequestSchema, UTCDateTime, id_field
from app.platform.phi_policy import PhiSchema, PolicedJSON


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
    callback_at = UTCDateTime(
        allow_none=True,
        metadata={
            "description": "With the outcome callback_requested (required then): when the family asked "
            "to be called back; the call task is due again then"
        },
    )
    lost_reason = fields.String(
        allow_none=True,
        validate=validate.OneOf(LOST_REASONS),
        metadata={"description": "With the outcome not_interested: why (default NOT_INTERESTED)"},
    )


class ActivityQueryArgs(RequestSchema):
    type = fields.List(
        fields.String(validate=validate.OneOf([t.value for t in ActivityType])),
        validate=validate.Length(max=50),
        metadata={"description": "Only these types (repeat the parameter for several)"},
    )


class FeedArgs(ActivityQueryArgs):
    """Filters of the clinic-wide feed; `type` may be repeated."""

    lead_id = id_field(strict=False)
    direction = fields.String(validate=validate.OneOf([d.value for d in ActivityDirection]))
    created_by = id_field(strict=False, metadata={"description": "The user who logged it"})
    actor = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "user:<id>, api_key:<id>, system, automation or web_form"},
    )
    occurred_from = UTCDateTime(metadata={"description": "Occurred at or after (naive means UTC)"})
    occurred_to = UTCDateTime(metadata={"description": "Occurred before (naive means UTC)"})

    @validates_schema
    def _range(self, data, **_):
        start, end = data.get("occurred_from"), data.get("occurred_to")
        if start and end and start > end:
            raise ValidationError("occurred_to is before occurred_from", "occurred_to")


class ActivityOut(PhiSchema):
    PHI_KIND = "activity"

    id = fields.Integer()
    lead_id = fields.Integer()
    type = fields.String()
    direction = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    duration_minutes = fields.Integer(allow_none=True)
    previous_stage = fields.String(allow_none=True)
    new_stage = fields.String(allow_none=True)
    details = PolicedJSON(
        allow_none=True, metadata={"description": "Assignment: from_user_id, to_user_id, reason"}
    )
    occurred_at = fields.DateTime()
    created_at = fields.DateTime()
    created_by = fields.Integer(
        attribute="created_by_id", allow_none=True, metadata={"description": "User id"}
    )
    actor = fields.String(metadata={"description": "user:<id>, api_key:<id>, system or web_form"})
    sentiment = fields.String(
        allow_none=True,
        metadata={"description": "Inbound email/SMS: positive, neutral, negative or unknown (not English)"},
    )
