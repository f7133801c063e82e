"""Request and response schemas of message templates, their preview, and a message to a lead."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from app.domains.conversations import whatsapp
from app.domains.conversations.outbound_media import MESSAGE_TYPES, static_problems
from app.domains.lead_messages import merge_fields
from app.domains.lead_messages.models import CHANNELS, EMAIL, MESSAGE_CHANNELS, SMS, WHATSAPP
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, UTCDateTime, id_field
from app.platform.delivery.rules import HOLD_REASONS

MAX_SUBJECT = 300
CHANNEL = validate.OneOf(CHANNELS, error="unknown channel {input!r}; known: {choices}")
TEXT_HELP = "merge fields: " + ", ".join(f"{{{{ {name} }}}}" for name in merge_fields.MERGE_FIELDS)


def _subject(**kwargs) -> fields.String:
    return fields.String(
        validate=validate.Length(min=1, max=MAX_SUBJECT),
        metadata={"description": f"email only; {TEXT_HELP}"},
        **kwargs,
    )


def _body(**kwargs) -> fields.String:
    return fields.String(
        validate=validate.Length(min=1, max=merge_fields.MAX_TEMPLATE_LENGTH),
        metadata={"description": f"the email text or the SMS; {TEXT_HELP}"},
        **kwargs,
    )


class MessageTemplateUpdateIn(RequestSchema):
    """The channel of a template is fixed: rules and sequences name it for that channel."""

    name = fields.String(validate=validate.Length(min=1, max=200))
    subject = _subject()
    body = _body()


class MessageTemplateIn(MessageTemplateUpdateIn):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    channel = fields.String(required=True, validate=CHANNEL)
    body = _body(required=True)


class TemplateQueryArgs(RequestSchema):
    channel = fields.String(validate=CHANNEL)


class MessageTemplateOut(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    channel = fields.String()
    subject = fields.String(allow_none=True)
    body = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class MessageTemplateStatsOut(MessageTemplateOut):
    usage_count = fields.Integer(metadata={"description": "messages made from the template"})
    reply_count = fields.Integer(
        metadata={
            "description": "of those, the ones the lead answered by email or SMS before the next "
            "outbound call, email or SMS to them"
        }
    )


class PreviewIn(RequestSchema):
    lead_id = id_field(metadata={"description": "render for this lead (the read is audited); else a sample"})


class PreviewOut(AnswerSchema):
    template_id = fields.Integer()
    channel = fields.String()
    lead_id = fields.Integer(allow_none=True)
    subject = fields.String(allow_none=True)
    body = fields.String()


def _content_sid() -> fields.String:
    return fields.String(
        validate=validate.Length(max=34),
        metadata={
            "description": "WhatsApp only: an approved template's Content SID (HX + 32 hex), sent through "
            "Twilio's Content API; needed outside WhatsApp's 24-hour window"
        },
    )


def _content_variables() -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=2)),
        values=fields.String(validate=validate.Length(max=1024)),
        validate=validate.Length(max=20),
        metadata={"description": 'WhatsApp only: the template\'s placeholders, e.g. {"1": "Jane"}'},
    )


def template_problems(data: dict) -> dict[str, list[str]]:
    """A WhatsApp template's fields checked, and refused on any other channel."""
    named = [name for name in ("content_sid", "content_variables") if name in data]
    if data.get("channel") not in (WHATSAPP, None):
        return {name: ["a WhatsApp template: only with channel whatsapp"] for name in named}
    return whatsapp.template_errors(data)


class LeadMessageIn(RequestSchema):
    """A message: a template of the channel, or the texts (subject and body for an email). On
    Instagram: a reply within 7 days of the family's last DM (Meta's human agent window)."""

    channel = fields.String(
        required=True,
        validate=validate.OneOf(MESSAGE_CHANNELS, error="unknown channel {input!r}; known: {choices}"),
    )
    template_id = id_field()
    subject = _subject()
    body = _body()
    content_sid = _content_sid()
    content_variables = _content_variables()

    @validates_schema
    def check_texts(self, data, **kwargs):
        if "template_id" in data:
            both = [name for name in ("subject", "body") if name in data]
            if both:
                raise ValidationError({key: ["give either a template_id or the texts"] for key in both})
            return
        required = ("subject", "body") if data.get("channel") == EMAIL else ("body",)
        if data.get("channel") == WHATSAPP and data.get("content_sid"):
            required = ()  # the approved template is the message
        problems = {name: ["required (or give a template_id)"] for name in required if not data.get(name)}
        problems.update(template_problems(data))
        if data.get("channel") != EMAIL and "subject" in data:
            problems["subject"] = [
                f"{'an SMS' if data.get('channel') == SMS else 'a direct message'} has no subject"
            ]
        for name in ("subject", "body"):
            if (
                data.get(name)
                and name not in problems
                and (error := merge_fields.merge_field_error(data[name]))
            ):
                problems[name] = [error]
        if problems:
            raise ValidationError(problems)


class ConversationReplyIn(RequestSchema):
    """A reply from the thread: the channel the family last wrote on unless given; with an image or
    video (`media_url`) on the channels that carry one (docs/features/conversations.md, "Images
    and videos")."""

    channel = fields.String(
        validate=validate.OneOf(MESSAGE_CHANNELS, error="unknown channel {input!r}; known: {choices}"),
        metadata={"description": "default: the family's last channel"},
    )
    subject = _subject()
    body = _body()  # required unless media_url or a WhatsApp template (content_sid): replies.py says so
    content_sid = _content_sid()
    content_variables = _content_variables()
    message_type = fields.String(
        validate=validate.OneOf(MESSAGE_TYPES, error="unknown message_type {input!r}; known: {choices}"),
        metadata={"description": "text (default), image or video: an image or video needs media_url"},
    )
    media_url = fields.String(
        validate=validate.Length(min=1, max=2000),
        metadata={
            "description": "a public http(s) URL of the image or video the provider fetches: SMS (MMS) "
            "JPEG/PNG/GIF up to 5 MB; WhatsApp JPEG/PNG up to 5 MB, MP4 up to 16 MB; Instagram image "
            "up to 8 MB, MP4/MOV up to 25 MB; email: none (put a link in the body)"
        },
    )

    @validates_schema
    def check_template_and_media(self, data, **kwargs):
        problems = template_problems(data)
        problems.update(static_problems(data.get("channel"), data.get("message_type"), data.get("media_url")))
        if problems:
            raise ValidationError(problems)


class LeadMessageOut(AnswerSchema):
    notification_id = fields.Integer()
    activity_id = fields.Integer(metadata={"description": "the OUTBOUND email or SMS on the lead's timeline"})
    channel = fields.String()
    template_id = fields.Integer(allow_none=True)
    status = fields.String(metadata={"description": "the delivery's status (GET /api/notifications)"})
    scheduled_for = fields.DateTime(
        allow_none=True, metadata={"description": "when delivery is due: now, or the end of quiet hours"}
    )
    held_until_reason = fields.String(allow_none=True)
    held_until = UTCDateTime(
        allow_none=True, metadata={"description": "held back: when it goes (UTC); null: not held"}
    )
    held_by = fields.String(
        allow_none=True,
        validate=validate.OneOf(HOLD_REASONS),
        metadata={"description": "what holds it back: quiet_hours, pacing or daily_cap; null: not held"},
    )
    subject = fields.String(allow_none=True)
    body = fields.String()


class OutreachPauseIn(RequestSchema):
    starts = UTCDateTime(data_key="from", metadata={"description": "default now"})
    until = UTCDateTime(allow_none=True, metadata={"description": "null or absent: until resumed"})


class OutreachPauseOut(AnswerSchema):
    starts = fields.DateTime(data_key="from", allow_none=True)
    until = fields.DateTime(allow_none=True)
    active = fields.Boolean(metadata={"description": "automated messages to leads are held now"})
