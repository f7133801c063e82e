"""Request and response schemas of sequences, enrollments and the inbound-message webhook."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from app.api import RequestSchema, UTCDateTime, id_field
from app.automation import rules
from app.automation.sequences import CHANNELS, MAX_STEPS
from app.messaging import merge_fields

MAX_DELAY = 525_600  # a year of minutes: more than any cadence needs, small enough for date arithmetic


class DelayIn(RequestSchema):
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=MAX_DELAY))
    unit = fields.String(
        required=True,
        validate=validate.OneOf(rules.DELAY_UNITS, error="unknown unit {input!r}; known: {choices}"),
    )


class SequenceStepIn(RequestSchema):
    """One step: wait `delay` after the previous step (or the enrollment), then email, SMS or a call task."""

    delay = fields.Nested(DelayIn, required=True)
    channel = fields.String(
        required=True, validate=validate.OneOf(CHANNELS, error="unknown channel {input!r}; known: {choices}")
    )
    subject = fields.String(validate=validate.Length(min=1, max=300), metadata={"description": "email"})
    body = fields.String(
        validate=validate.Length(min=1, max=5000),
        metadata={"description": "the email or SMS text, with merge fields ({{ first_name }}, ...)"},
    )
    title = fields.String(
        validate=validate.Length(min=1, max=200), metadata={"description": "call task title"}
    )
    template_id = id_field(
        metadata={"description": "a message template of the step's channel, instead of subject and body"}
    )

    @validates_schema
    def check_texts(self, data, **kwargs):
        if "template_id" in data:
            self._check_template_step(data)
            return
        required = {"email": ("subject", "body"), "sms": ("body",)}.get(data.get("channel"), ())
        problems = {name: ["required for this channel"] for name in required if not data.get(name)}
        for name in ("subject", "body", "title"):
            error = (
                merge_fields.merge_field_error(data[name])
                if data.get(name) and name not in problems
                else None
            )
            if error:
                problems[name] = [error]
        if problems:
            raise ValidationError(problems)

    @staticmethod
    def _check_template_step(data: dict) -> None:
        if data.get("channel") == "call":
            raise ValidationError({"template_id": ["a call step has no message template"]})
        both = {name: ["give either a template_id or the texts, not both"] for name in ("subject", "body")}
        problems = {name: error for name, error in both.items() if name in data}
        if problems:
            raise ValidationError(problems)


class SequenceUpdateIn(RequestSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, validate=validate.Length(max=5000))
    steps = fields.List(fields.Nested(SequenceStepIn), validate=validate.Length(min=1, max=MAX_STEPS))
    active = fields.Boolean()


class SequenceIn(SequenceUpdateIn):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    steps = fields.List(
        fields.Nested(SequenceStepIn), required=True, validate=validate.Length(min=1, max=MAX_STEPS)
    )


class DelayOut(Schema):
    amount = fields.Integer()
    unit = fields.String()


class SequenceStepOut(Schema):
    delay = fields.Nested(DelayOut)
    channel = fields.String()
    subject = fields.String()
    body = fields.String()
    title = fields.String()
    template_id = fields.Integer()


class SequenceOut(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    steps = fields.List(fields.Nested(SequenceStepOut))
    active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class EnrollIn(RequestSchema):
    sequence_id = id_field(required=True)


class EnrollmentOut(Schema):
    id = fields.Integer()
    sequence_id = fields.Integer()
    status = fields.String(metadata={"description": "active, completed or unenrolled"})
    current_step = fields.Integer(metadata={"description": "the step running or next to run (0-based)"})
    next_step_at = fields.DateTime(allow_none=True)
    enrolled_at = fields.DateTime()
    enrolled_by = fields.String(metadata={"description": "user:<id>, api_key:<id> or rule:<id>"})
    ended_at = fields.DateTime(allow_none=True)
    end_reason = fields.String(
        allow_none=True,
        metadata={"description": "completed, manual, replied, converted, lost, deleted, opted_out"},
    )


class InboundIn(RequestSchema):
    """An inbound SMS or email, as the provider adapter posts it (signed like the web form)."""

    channel = fields.String(required=True, validate=validate.OneOf(("sms", "email")))
    from_ = fields.String(
        data_key="from",
        required=True,
        validate=validate.Length(min=1, max=320),
        metadata={"description": "the sender's phone number (any format) or email address"},
    )
    body = fields.String(required=True, validate=validate.Length(max=20_000))
    message_id = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata={"description": "the provider's id"}
    )
    received_at = UTCDateTime(metadata={"description": "when the provider received it (default: now)"})

    @post_load
    def name_sender(self, data, **kwargs):
        data["from"] = data.pop("from_")  # `from` is the wire name; Python reserves it
        return data


class CallIn(RequestSchema):
    """An inbound call, as the phone system's caller-ID adapter posts it (signed like the web form)."""

    call_id = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata={"description": "the system's id"}
    )
    from_ = fields.String(
        data_key="from",
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "the caller's number (any format)"},
    )
    caller_name = fields.String(
        allow_none=True, validate=validate.Length(max=200), metadata={"description": "caller-ID name, if any"}
    )
    started_at = UTCDateTime(metadata={"description": "when the call started (default: now)"})
    duration_seconds = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=86400))

    @post_load
    def name_caller(self, data, **kwargs):
        data["from"] = data.pop("from_")
        return data


class CallOut(Schema):
    lead_id = fields.Integer()
    activity_id = fields.Integer()
    created_lead = fields.Boolean(metadata={"description": "true: nobody had the number; a lead was made"})


class InboundOut(Schema):
    matched = fields.Boolean(metadata={"description": "false: no open lead of the clinic has that sender"})
    lead_id = fields.Integer(allow_none=True)
    activity_id = fields.Integer(allow_none=True)
    opted_out = fields.Boolean(metadata={"description": "the message was an SMS STOP"})
