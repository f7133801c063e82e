"""Request and response schemas of follow-up intelligence."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.api import RequestSchema


class ContactSlotOut(Schema):
    starts_at = fields.DateTime(metadata={"description": "UTC; the current hour starts now"})
    ends_at = fields.DateTime()
    local_day = fields.String(metadata={"description": "mon..sun, in the clinic's timezone"})
    local_hour = fields.Integer(metadata={"description": "0-23, in the clinic's timezone"})
    rate = fields.Float(metadata={"description": "Smoothed share of calls answered in this hour of week"})
    calls = fields.Integer(metadata={"description": "Calls this rate rests on (the sample size)"})


class BestContactTimesOut(Schema):
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


class MonthForecastOut(Schema):
    month = fields.String(metadata={"description": "YYYY-MM (UTC months)"})
    expected_conversions = fields.Float()
    from_pipeline = fields.Float(metadata={"description": "Open leads x their stage's conversion rates"})
    from_new_leads = fields.Float(metadata={"description": "Leads not captured yet: the seasonal baseline"})


class ForecastOut(Schema):
    generated_at = fields.DateTime()
    history_leads = fields.Integer(metadata={"description": "Leads of the last 25 months the forecast read"})
    months = fields.List(fields.Nested(MonthForecastOut))
