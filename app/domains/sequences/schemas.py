"""Request and response schemas of sequences, enrollments and their statistics."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from app.domains.automation import rules
from app.domains.lead_messages import merge_fields
from app.domains.sequences.service import CHANNELS, MAX_STEPS
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, StrictBoolean, id_field

MAX_DELAY = 525_600  # a year of minutes: more than any cadence needs, small enough for date arithmetic


class DelayIn(RequestSchema):
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=MAX_DELAY))
    unit = fields.String(
        required=True,
        validate=validate.OneOf(rules.DELAY_UNITS, error="unknown unit {input!r}; known: {choices}"),
    )


class VariantIn(RequestSchema):
    """One version of a step's texts; the step's channel and delay are shared."""

    key = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=20), validate.Regexp(r"^[A-Za-z0-9_-]+$")],
        metadata={"description": "a short name, e.g. A or B"},
    )
    weight = fields.Integer(
        load_default=1,
        strict=True,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "the variant's share of leads, relative to the others (default 1)"},
    )
    subject = fields.String(validate=validate.Length(min=1, max=300))
    body = fields.String(validate=validate.Length(min=1, max=5000))
    title = fields.String(validate=validate.Length(min=1, max=200))
    template_id = id_field()


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
    fallback_channel = fields.String(
        validate=validate.OneOf(("email", "sms")),
        metadata={
            "description": "the other channel, tried once if this one fails for good (bounce, invalid number)"
        },
    )
    variants = fields.List(
        fields.Nested(VariantIn),
        validate=validate.Length(min=2, max=5),
        metadata={
            "description": "versions of the step's texts, each lead getting one by weight; each variant "
            "gives the texts the channel needs"
        },
    )

    @validates_schema
    def check_fallback(self, data, **kwargs):
        fallback, channel = data.get("fallback_channel"), data.get("channel")
        if fallback is not None and (fallback == channel or channel == "call"):
            raise ValidationError(
                {"fallback_channel": ["an email step falls back to sms, an sms step to email"]}
            )

    @validates_schema
    def check_variants(self, data, **kwargs):
        variants = data.get("variants")
        if not variants:
            return
        keys = [v["key"] for v in variants]
        if len(set(keys)) != len(keys):
            raise ValidationError({"variants": ["each variant needs a key of its own"]})
        for number, variant in enumerate(variants):
            try:
                self.check_texts({**variant, "channel": data.get("channel")})
            except ValidationError as wrong:
                raise ValidationError({"variants": {str(number): wrong.messages}}) from None

    @validates_schema
    def check_texts(self, data, **kwargs):
        if data.get("variants"):
            return  # each variant carries the texts (check_variants)
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
    active = StrictBoolean()
    allow_concurrent = StrictBoolean(
        metadata={"description": "whether a lead in another sequence may also be enrolled here (default no)"}
    )


class SequenceIn(SequenceUpdateIn):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    steps = fields.List(
        fields.Nested(SequenceStepIn), required=True, validate=validate.Length(min=1, max=MAX_STEPS)
    )


class DelayOut(AnswerSchema):
    amount = fields.Integer()
    unit = fields.String()


class SequenceStepOut(AnswerSchema):
    """A step as it was written: its texts are those its channel takes (an email's subject and body,
    an SMS's body, a call's title), or a message template, and variants when it is A/B tested."""

    delay = fields.Nested(DelayOut)
    channel = fields.String()
    subject = fields.String(metadata={"optional": True})
    body = fields.String(metadata={"optional": True})
    title = fields.String(metadata={"optional": True})
    template_id = fields.Integer(metadata={"optional": True})
    fallback_channel = fields.String(metadata={"optional": True})
    variants = fields.List(fields.Dict(), metadata={"optional": True})


class SequenceOut(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    steps = fields.List(fields.Nested(SequenceStepOut))
    active = fields.Boolean()
    allow_concurrent = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class EnrollIn(RequestSchema):
    sequence_id = id_field(required=True)


class EnrollmentOut(AnswerSchema):
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
        metadata={
            "description": (
                "completed, manual, replied, converted, lost, deleted, opted_out, "
                "consultation_booked, bounced"
            )
        },
    )


class VariantStatsArgs(RequestSchema):
    window_days = fields.Integer(
        load_default=30,
        strict=True,
        validate=validate.Range(min=1, max=365),
        metadata={"description": "days after the step in which a booking or conversion counts (default 30)"},
    )


class KeepVariantIn(RequestSchema):
    key = fields.String(required=True, validate=validate.Length(min=1, max=20))


class VariantStatsOut(AnswerSchema):
    sequence_id = fields.Integer()
    step = fields.Integer()
    window_days = fields.Integer()
    judged_on = fields.String()
    variants = fields.List(fields.Dict())


class SequenceStatsOut(AnswerSchema):
    sequence_id = fields.Integer()
    name = fields.String()
    active = fields.Boolean()
    enrolled = fields.Integer()
    active_enrollments = fields.Integer()
    completed = fields.Integer()
    replied = fields.Integer()
    unenrolled_by_reason = fields.Dict(keys=fields.String(), values=fields.Integer())
    converted_within_30_days = fields.Integer(
        metadata={"description": "Enrollments whose lead converted within 30 days of enrolling"}
    )
