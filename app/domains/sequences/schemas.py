"""Request and response schemas of sequences, enrollments and their statistics."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from app.domains.activities.models import CallOutcome
from app.domains.automation import rules
from app.domains.automation.language import validation as rule_validation
from app.domains.conversations import whatsapp
from app.domains.conversations.outbound_media import MESSAGE_TYPES, static_problems
from app.domains.lead_messages import merge_fields
from app.domains.sequences import graph
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


# --- branching (issue 60): what a step waits for and where each outcome leads (graph.py) ---------

_STEP_KEY = validate.Regexp(r"^[A-Za-z][A-Za-z0-9_-]*$", error="a letter, then letters, digits, _ or -")
_TARGET_DOC = 'a step\'s key (a step without one is named by its number from 1: "1", "2", ...) or "end"'


def _target(**kwargs):
    return fields.String(
        validate=[validate.Length(min=1, max=40), validate.Regexp(r"^[A-Za-z0-9_-]+$")],
        metadata={"description": _TARGET_DOC},
        **kwargs,
    )


class WaitIn(RequestSchema):
    """After its message or task, the step waits for one of these events, at most `timeout`."""

    waits_for = fields.List(
        fields.String(
            validate=validate.OneOf(graph.WAIT_EVENTS, error="unknown event {input!r}; known: {choices}")
        ),
        data_key="for",
        attribute="for",
        required=True,
        validate=validate.Length(min=1, max=len(graph.WAIT_EVENTS)),
        metadata={"description": f"one or more of {', '.join(graph.WAIT_EVENTS)}"},
    )
    timeout = fields.Nested(DelayIn, required=True)
    call_outcomes = fields.List(
        fields.String(validate=validate.OneOf([o.value for o in CallOutcome])),
        validate=validate.Length(min=1, max=len(CallOutcome)),
        metadata={"description": "call_logged counts only a call with one of these outcomes (default: any)"},
    )

    @validates_schema
    def check_timeout(self, data, **kwargs):
        if data.get("timeout", {}).get("amount") == 0:  # a wait of nothing would loop at once
            raise ValidationError({"timeout": {"amount": ["a wait lasts at least 1"]}})


class OnIn(RequestSchema):
    """Where each outcome of the wait leads (an outcome not named goes to the next step)."""

    replied = _target()
    email_opened = _target()
    link_clicked = _target()
    consultation_booked = _target()
    call_logged = _target()
    timeout = _target()


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
            "description": "the other channel, tried once if this one fails for good (bounce, invalid "
            "number; a WhatsApp step: sms, when WhatsApp cannot reach the family)"
        },
    )
    content_sid = fields.String(
        validate=validate.Length(max=34),
        metadata={
            "description": "WhatsApp: the approved template (Content SID, HX + 32 hex) sent outside the "
            "24-hour window, or instead of a body"
        },
    )
    content_variables = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=2)),
        values=fields.String(validate=validate.Length(max=1024)),
        validate=validate.Length(max=20),
        metadata={"description": 'WhatsApp: the template\'s placeholders, e.g. {"1": "Jane"}'},
    )
    variants = fields.List(
        fields.Nested(VariantIn),
        validate=validate.Length(min=2, max=5),
        metadata={
            "description": "versions of the step's texts, each lead getting one by weight; each variant "
            "gives the texts the channel needs"
        },
    )
    message_type = fields.String(
        validate=validate.OneOf(MESSAGE_TYPES, error="unknown message_type {input!r}; known: {choices}"),
        metadata={"description": "text (default), image or video (the spec's FollowUpMessage)"},
    )
    media_url = fields.String(
        validate=validate.Length(min=1, max=2000),
        metadata={
            "description": "an image or video sent with the step (SMS as MMS, Instagram): checked when "
            "saved, with the limits of POST /api/leads/{id}/conversation/messages"
        },
    )
    # Branching (issue 60): kept apart from the texts' fields above.
    key = fields.String(
        validate=[validate.Length(min=1, max=40), _STEP_KEY],
        metadata={"description": "the step's name, for `next` and `on` to point at"},
    )
    wait = fields.Nested(WaitIn, metadata={"description": "wait for what the family does, up to a timeout"})
    on = fields.Nested(OnIn, metadata={"description": "where each outcome of the wait leads"})
    next = _target()

    @validates_schema
    def check_fallback(self, data, **kwargs):
        fallback, channel = data.get("fallback_channel"), data.get("channel")
        if fallback is not None and (fallback == channel or channel == "call"):
            why = "an email step falls back to sms, an sms step to email, a whatsapp step to sms"
            raise ValidationError({"fallback_channel": [why]})
        if channel == "whatsapp" and fallback == "email":
            raise ValidationError({"fallback_channel": ["a whatsapp step falls back to sms"]})
        named = [name for name in ("content_sid", "content_variables") if name in data]
        if channel != "whatsapp" and named:
            raise ValidationError({name: ["a WhatsApp template: only on a whatsapp step"] for name in named})
        if problems := whatsapp.template_errors(data):
            raise ValidationError(problems)

    @validates_schema
    def check_media(self, data, **kwargs):
        if data.get("channel") == "call" and (data.get("media_url") or data.get("message_type")):
            raise ValidationError({"media_url": ["a call step sends nothing"]})
        problems = static_problems(data.get("channel"), data.get("message_type"), data.get("media_url"))
        if problems:
            raise ValidationError(problems)

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
        required = {"email": ("subject", "body"), "sms": ("body",), "instagram": ("body",)}.get(
            data.get("channel"), ()
        )
        if data.get("channel") == "whatsapp":  # its text, its approved template, its media, or both
            required = () if data.get("content_sid") or data.get("media_url") else ("body",)
        if data.get("media_url") and data.get("channel") == "instagram":
            required = ()  # an attachment goes alone (outbound_media.check)
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


# Entry and exit criteria are rules' conditions, checked by the rule language when saved.
_CRITERIA_CHECK = {"guarded_by": "app.domains.automation.language.validation.validate_conditions"}


def _criteria(description: str):
    return fields.List(
        fields.Raw(metadata=_CRITERIA_CHECK),
        allow_none=True,
        validate=validate.Length(max=rules.MAX_CONDITIONS),
        metadata={"description": description + "; conditions as a rule's (groups all/any/not)"},
    )


class SequenceUpdateIn(RequestSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, validate=validate.Length(max=5000))
    steps = fields.List(fields.Nested(SequenceStepIn), validate=validate.Length(min=1, max=MAX_STEPS))
    active = StrictBoolean()
    allow_concurrent = StrictBoolean(
        metadata={"description": "whether a lead in another sequence may also be enrolled here (default no)"}
    )
    paced_by_pass = StrictBoolean(
        metadata={
            "description": "each next message goes at the clinic's follow-up pass (its send windows) to "
            "a lead silent 24 hours, in the score band, under the follow-up cap and interval (default no)"
        }
    )
    entry_conditions = _criteria("a lead is enrolled only if these hold")
    exit_conditions = _criteria("an enrollment ends once these hold for its lead")

    @validates_schema
    def check_graph(self, data, **kwargs):
        """The steps as a graph: keys known, every step reachable, no loop without a wait."""
        if data.get("steps") and (problems := graph.problems(data["steps"])):
            raise ValidationError({"steps": problems})

    @validates_schema
    def check_criteria(self, data, **kwargs):
        errors = {
            name: problems
            for name in ("entry_conditions", "exit_conditions")
            if data.get(name) and (problems := rule_validation.validate_conditions(data[name]))
        }
        if errors:
            raise ValidationError(errors)


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
    content_sid = fields.String(metadata={"optional": True})
    content_variables = fields.Dict(metadata={"optional": True})
    message_type = fields.String(metadata={"optional": True})
    media_url = fields.String(metadata={"optional": True})
    variants = fields.List(fields.Dict(), metadata={"optional": True})
    # Branching (issue 60)
    key = fields.String(metadata={"optional": True})
    wait = fields.Dict(metadata={"optional": True})
    on = fields.Dict(metadata={"optional": True})
    next = fields.String(metadata={"optional": True})


class SequenceOut(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    steps = fields.List(fields.Nested(SequenceStepOut))
    active = fields.Boolean()
    allow_concurrent = fields.Boolean()
    paced_by_pass = fields.Boolean()
    entry_conditions = fields.List(fields.Raw(), allow_none=True)
    exit_conditions = fields.List(fields.Raw(), allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class EnrollIn(RequestSchema):
    sequence_id = id_field(required=True)


PATH_DOC = (
    "the steps taken, in order: {step (0-based), key, at, via}; via, on a step a wait chose, is {after: "
    "the waiting step's key, outcome: replied, email_opened, link_clicked, consultation_booked, "
    "call_logged or timeout, event_id, at}; a step that waits shows waiting: {for, until}; a path that "
    "a wait ended has a last entry with the key end"
)


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
                "consultation_booked, bounced, exit_conditions, step_limit"
            )
        },
    )
    position = fields.String(
        allow_none=True,
        metadata={"description": "the key of the step the lead is at (running, next or waiting)"},
    )
    path = fields.List(fields.Dict(), allow_none=True, metadata={"description": PATH_DOC})


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


class FollowUpPassOut(AnswerSchema):
    id = fields.Integer()
    local_date = fields.String(metadata={"description": "the clinic's local date of the window"})
    window = fields.String(metadata={"description": "the send window, HH:MM in the clinic's time"})
    ran_at = fields.DateTime()
    selected = fields.Integer(metadata={"description": "leads whose paced step was due"})
    sent = fields.Integer(metadata={"description": "follow-ups sent (handed to the outbound path)"})
    skipped = fields.List(
        fields.Dict(),
        metadata={
            "description": "[{lead_id, reason, task_id?}]: the due leads that did not qualify, and why; "
            "an Instagram step past Meta's 7-day human agent window became the task `task_id` for a person"
        },
    )


class FollowUpPassArgs(RequestSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class _SequenceConversion(AnswerSchema):
    sequence_id = fields.Integer()
    name = fields.String()
    enrolled = fields.Integer(metadata={"description": "enrollments made in the range"})
    converted = fields.Integer(
        metadata={"description": "of those, leads converted within 30 days of enrolling"}
    )
    conversion_rate = fields.Float(allow_none=True)


class _StepMessage(AnswerSchema):
    sequence_id = fields.Integer()
    name = fields.String(allow_none=True)
    step = fields.Integer(metadata={"description": "the step's position in its sequence, from 1"})
    sent = fields.Integer()
    replied = fields.Integer()
    reply_rate = fields.Float(allow_none=True)


class _StepLeads(AnswerSchema):
    sequence_id = fields.Integer()
    name = fields.String(allow_none=True)
    step = fields.Integer(metadata={"description": "the step's position in its sequence, from 1"})
    leads = fields.Integer(metadata={"description": "leads whose active enrollment takes this step next"})


class FollowUpReportOut(AnswerSchema):
    start = fields.DateTime(data_key="from", attribute="from", metadata={"description": "range start"})
    end = fields.DateTime(data_key="to", attribute="to", metadata={"description": "range end (exclusive)"})
    sent_today = fields.Integer(
        metadata={
            "description": "follow-ups (sequence steps' automated messages) sent on the clinic's local today"
        }
    )
    sent = fields.Integer(metadata={"description": "follow-ups sent in the range"})
    replied = fields.Integer(metadata={"description": "of those, answered within the reply window"})
    response_rate = fields.Float(allow_none=True)
    reply_window_hours = fields.Integer()
    conversion_by_sequence = fields.List(fields.Nested(_SequenceConversion))
    min_sample = fields.Integer(metadata={"description": "sends a message needs to rank among the top"})
    top_messages = fields.List(fields.Nested(_StepMessage), metadata={"description": "best reply rate first"})
    leads_at_step = fields.List(fields.Nested(_StepLeads))
