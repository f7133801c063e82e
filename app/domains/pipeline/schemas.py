"""Request and response schemas of the pipeline."""

from __future__ import annotations

from marshmallow import fields, validate

from app.domains.leads.models import HesitationReason, LostReason
from app.domains.pipeline import rules
from app.platform.answers import AnswerSchema
from app.platform.api import MAX_ID, RequestSchema, StrictBoolean, id_field

LOST_REASONS = validate.OneOf([r.value for r in LostReason])


class StageUpdateIn(RequestSchema):
    """A stage's settings; the slug is fixed once created (leads refer to it)."""

    name = fields.String(validate=validate.Length(min=1, max=100))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    color = fields.String(
        allow_none=True,
        validate=[
            validate.Length(max=7),
            validate.Regexp(rules.COLOR_PATTERN, error="give a colour as #RRGGBB"),
        ],
        metadata={"description": "#RRGGBB"},
    )
    task_template_id = id_field(
        allow_none=True,
        metadata={"description": "Task template created when a lead enters the stage"},
    )
    max_days_in_stage = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=3650),
        metadata={"description": "Alert after"},
    )
    is_terminal = StrictBoolean()
    is_default = StrictBoolean(
        metadata={"description": "New leads start here; exactly one stage is the default"}
    )


class StageIn(StageUpdateIn):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    slug = fields.String(
        validate=[
            validate.Length(max=64),
            validate.Regexp(rules.SLUG_PATTERN, error="lower-case letters, digits and _ (max 64)"),
        ],
        metadata={"description": "Default: made from the name"},
    )
    order = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "1-based position; default: before the first terminal stage"},
    )


class StageOut(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    slug = fields.String()
    description = fields.String(allow_none=True)
    order = fields.Integer(attribute="position")
    color = fields.String(allow_none=True)
    task_template_id = fields.Integer(allow_none=True)
    max_days_in_stage = fields.Integer(allow_none=True)
    is_terminal = fields.Boolean()
    is_default = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ReorderIn(RequestSchema):
    stage_ids = fields.List(
        id_field(),
        required=True,
        validate=validate.Length(max=1000),
        metadata={"description": "Every stage id of the clinic, exactly once, in the new order"},
    )


class StageChangeIn(RequestSchema):
    stage = fields.String(
        required=True, validate=validate.Length(min=1, max=64), metadata={"description": "Slug"}
    )
    reason = fields.String(
        allow_none=True, validate=LOST_REASONS, metadata={"description": "Required when stage is lost"}
    )
    notes = fields.String(allow_none=True, validate=validate.Length(max=10000))
    hesitation_reason = fields.String(
        allow_none=True,
        validate=validate.OneOf([r.value for r in HesitationReason]),
        metadata={
            "description": "Required when stage is pending_decision: cost, timing, second_opinion, "
            "approval, financing or other"
        },
    )


MAX_TREATMENT_VALUE = 10**9  # the column is Numeric(12, 2)


class ConvertIn(RequestSchema):
    treatment_value = fields.Decimal(
        allow_none=True,
        places=2,
        validate=validate.Range(min=0, max=MAX_TREATMENT_VALUE),
        # Numbers, not apispec's Decimal-formatted strings ("1000000000.00" is no JSON Schema bound).
        metadata={
            "description": "The treatment's value, a plain amount in the clinic's currency (>= 0, two "
            "decimals; more are rounded): revenue and ROI per source add it up",
            "minimum": 0,
            "maximum": MAX_TREATMENT_VALUE,
        },
    )


class LostIn(RequestSchema):
    reason = fields.String(required=True, validate=LOST_REASONS)
    notes = fields.String(allow_none=True, validate=validate.Length(max=10000))
