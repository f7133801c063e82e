"""Request and response schemas of follow-up intelligence."""

from __future__ import annotations

from marshmallow import fields, validate

from app.domains.tasks.schemas import TaskOut
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema


class ContactSlotOut(AnswerSchema):
    starts_at = fields.DateTime(metadata={"description": "UTC; the current hour starts now"})
    ends_at = fields.DateTime()
    local_day = fields.String(metadata={"description": "mon..sun, in the clinic's timezone"})
    local_hour = fields.Integer(metadata={"description": "0-23, in the clinic's timezone"})
    rate = fields.Float(metadata={"description": "Smoothed share of calls answered in this hour of week"})
    calls = fields.Integer(metadata={"description": "Calls this rate rests on (the sample size)"})


class BestContactTimesOut(AnswerSchema):
    lead_id = fields.Integer()
    timezone = fields.String()
    scope = fields.String(
        metadata={"description": "clinic, source (the lead's source has enough calls of its own) or prior"}
    )
    overall_rate = fields.Float()
    calls = fields.Integer(metadata={"description": "Calls of the last year behind the rates"})
    slots = fields.List(fields.Nested(ContactSlotOut), metadata={"description": "Best first, at most 3"})


class ForecastArgs(RequestSchema):
    months = fields.Integer(
        load_default=3, validate=validate.Range(min=1, max=6), metadata={"description": "1-6 (default 3)"}
    )


class MonthForecastOut(AnswerSchema):
    month = fields.String(metadata={"description": "YYYY-MM (UTC months)"})
    expected_conversions = fields.Float()
    from_pipeline = fields.Float(metadata={"description": "Open leads x their stage's conversion rates"})
    from_new_leads = fields.Float(metadata={"description": "Leads not captured yet: the seasonal baseline"})


class ForecastOut(AnswerSchema):
    generated_at = fields.DateTime()
    history_leads = fields.Integer(metadata={"description": "Leads of the last 25 months the forecast read"})
    months = fields.List(fields.Nested(MonthForecastOut))


# --- my next call (next_call.py): why this task ----------------------------------------------------


class NextTaskSlaOut(AnswerSchema):
    kind = fields.String(metadata={"description": "speed_to_lead or first_response"})
    status = fields.String(
        metadata={"description": "pending, or warning (past the clinic's warning share of the target)"}
    )
    due_at = fields.DateTime(
        metadata={"description": "when the clock breaches (its target, in business time)"}
    )
    minutes_left = fields.Integer(metadata={"description": "minutes until due_at (0 or less: due now)"})


class NextTaskContactTimeOut(AnswerSchema):
    starts_at = fields.DateTime(metadata={"description": "the best open hour to call from now on (UTC)"})
    ends_at = fields.DateTime()
    rate = fields.Float(metadata={"description": "smoothed share of calls answered in that hour of week"})
    calls = fields.Integer(metadata={"description": "calls that rate rests on"})
    is_now = fields.Boolean(metadata={"description": "true: now is that best hour"})
    rate_now = fields.Float(
        allow_none=True,
        metadata={"description": "the answer rate of the current hour (null: the clinic is closed now)"},
    )


class NextTaskWhyOut(AnswerSchema):
    scope = fields.String(
        metadata={
            "description": "held (already yours), yours (due within the hour), team_overdue, yours_later"
        }
    )
    priority = fields.String()
    overdue_minutes = fields.Integer(
        allow_none=True, metadata={"description": "how late the task is (null when not yet due)"}
    )
    due_in_minutes = fields.Integer(
        allow_none=True, metadata={"description": "how soon the task is due (null when overdue)"}
    )
    lead_score = fields.Float(
        allow_none=True, metadata={"description": "the lead's P(conversion) (null: not scored yet)"}
    )
    sla = fields.Nested(
        NextTaskSlaOut,
        allow_none=True,
        metadata={"description": "the lead's running SLA clock due first (null: none running)"},
    )
    best_contact_time = fields.Nested(
        NextTaskContactTimeOut,
        allow_none=True,
        metadata={"description": "when the lead is likeliest to answer (null: no call history to judge by)"},
    )
    summary = fields.String(metadata={"description": "the reasons in words"})


class NextTaskOut(AnswerSchema):
    task = fields.Nested(TaskOut)
    claimed_until = fields.DateTime(
        metadata={"description": "the task is yours until then; renew to keep it"}
    )
    why = fields.Nested(NextTaskWhyOut)
