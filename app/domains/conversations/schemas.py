"""What the conversation endpoints take and answer.

A message's texts are what the family wrote or was sent: PHI, like an activity's notes. A reader
without `lead:phi` (front desk) gets every message's channel, direction, sender, status and times,
but no subject, body or preview (`_withhold_texts`, through `phi_policy.may_read_phi`).
"""

from __future__ import annotations

from marshmallow import fields, post_dump, validate

from app.domains.conversations.inbox import VIEWS
from app.domains.conversations.models import OPEN, RESOLVED, SNOOZED
from app.platform import phi_policy
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, StrictBoolean, UTCDateTime, id_field
from app.platform.delivery.rules import HOLD_REASONS

CHANNELS = ("sms", "email", "whatsapp", "instagram")
MESSAGE_TEXTS = ("subject", "body", "full_body")
STATUSES = (OPEN, SNOOZED, RESOLVED)


def _withhold(data: dict, names: tuple[str, ...]) -> dict:
    if not phi_policy.may_read_phi(phi_policy.current_reader()):
        for name in names:
            data.pop(name, None)
    return data


class PageArgs(RequestSchema):
    cursor = fields.String(validate=validate.Length(max=500))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class InboxArgs(PageArgs):
    view = fields.String(load_default="all", validate=validate.OneOf(VIEWS))
    unread = StrictBoolean(load_default=False)
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    status = fields.String(
        validate=validate.OneOf(STATUSES),
        metadata={
            "description": "open (the family may wait for an answer; not snoozed), snoozed (put away "
            "until a time not yet come) or resolved; default all"
        },
    )


class ReadIn(RequestSchema):
    message_id = id_field()


SNOOZED_UNTIL = "until when it is snoozed (UTC); null: not snoozed"


class ConversationSnoozeIn(RequestSchema):
    until = UTCDateTime(
        required=True, metadata={"description": "when the snooze ends (ISO 8601, a time ahead)"}
    )


class StatusOut(AnswerSchema):
    conversation_id = fields.Integer()
    lead_id = fields.Integer()
    status = fields.String(metadata={"description": "open or resolved"})
    snoozed_until = UTCDateTime(allow_none=True, metadata={"description": SNOOZED_UNTIL})


class LinkIn(RequestSchema):
    lead_id = id_field(required=True)


class MediaOut(AnswerSchema):
    n = fields.Integer(metadata={"description": "its number on the message, from 0"})
    kind = fields.String(metadata={"description": "image, video or file"})
    content_type = fields.String(allow_none=True, metadata={"description": "as the provider gave it"})
    url = fields.String(
        metadata={
            "description": "an inbound one's engine URL (GET, with lead:phi; never the provider's); "
            "an outbound one's address as the clinic sent it"
        }
    )


class MessageOut(AnswerSchema):
    id = fields.Integer()
    channel = fields.String()
    direction = fields.String(metadata={"description": "inbound (from the family) or outbound"})
    sender = fields.String(metadata={"description": "user:<id>, the automation (system), or the family"})
    sender_user_id = fields.Integer(allow_none=True)
    automated = fields.Boolean()
    origin = fields.Dict(
        allow_none=True, metadata={"description": "the automation's rule, sequence and step ids"}
    )
    subject = fields.String(
        allow_none=True, metadata={"optional": True, "description": "PHI: only with lead:phi"}
    )
    body = fields.String(
        metadata={
            "optional": True,
            "description": "PHI: only with lead:phi. An email without its quoted history",
        },
    )
    full_body = fields.String(
        allow_none=True, metadata={"optional": True, "description": "PHI: the email as received"}
    )
    auto_reply = fields.Boolean()
    status = fields.String(
        metadata={
            "description": "received (inbound); queued, sent, delivered, read, failed, cancelled (outbound)"
        }
    )
    failure_reason = fields.String(allow_none=True)
    held_until = UTCDateTime(
        allow_none=True, metadata={"description": "a queued message held back: when it goes (UTC)"}
    )
    held_by = fields.String(
        allow_none=True,
        validate=validate.OneOf(HOLD_REASONS),
        metadata={"description": "what holds it back: quiet_hours, pacing or daily_cap; null: not held"},
    )
    notification_id = fields.Integer(allow_none=True)
    occurred_at = UTCDateTime()
    media = fields.List(fields.Nested(MediaOut), metadata={"description": "its images and videos"})

    @post_dump
    def _withhold_texts(self, data: dict, **kwargs) -> dict:
        return _withhold(data, MESSAGE_TEXTS)


class ThreadOut(AnswerSchema):
    conversation_id = fields.Integer(allow_none=True)
    lead_id = fields.Integer(allow_none=True)
    status = fields.String()
    snoozed_until = UTCDateTime(allow_none=True, metadata={"description": SNOOZED_UNTIL})
    waiting_since = UTCDateTime(allow_none=True)
    first_reply_at = UTCDateTime(allow_none=True)
    unread = fields.Integer(metadata={"description": "the family's messages after the caller's read mark"})
    items = fields.List(fields.Nested(MessageOut))
    next_cursor = fields.String(allow_none=True, metadata={"description": "opaque: pass as `cursor`"})


class ReadOut(AnswerSchema):
    conversation_id = fields.Integer()
    lead_id = fields.Integer()
    last_read_message_id = fields.Integer()
    unread = fields.Integer()


class InboxLeadOut(AnswerSchema):
    id = fields.Integer()
    first_name = fields.String()
    last_name = fields.String(allow_none=True)


class ContactOut(AnswerSchema):
    channel = fields.String()
    address = fields.String(metadata={"description": "the unknown sender's phone or email"})


class LastMessageOut(AnswerSchema):
    id = fields.Integer()
    channel = fields.String()
    direction = fields.String()
    preview = fields.String(metadata={"optional": True, "description": "PHI: only with lead:phi"})

    @post_dump
    def _withhold_texts(self, data: dict, **kwargs) -> dict:
        return _withhold(data, ("preview",))


class InboxRowOut(AnswerSchema):
    id = fields.Integer()
    lead = fields.Nested(InboxLeadOut, allow_none=True)
    contact = fields.Nested(
        ContactOut, allow_none=True, metadata={"description": "an unknown sender's thread"}
    )
    assignee_id = fields.Integer(allow_none=True)
    status = fields.String()
    snoozed_until = UTCDateTime(allow_none=True, metadata={"description": SNOOZED_UNTIL})
    unread = fields.Integer()
    waiting_since = UTCDateTime(allow_none=True)
    last_message_at = UTCDateTime(allow_none=True)
    last_message = fields.Nested(LastMessageOut, allow_none=True)


class InboxOut(AnswerSchema):
    items = fields.List(fields.Nested(InboxRowOut))
    next_cursor = fields.String(allow_none=True)


class LinkOut(AnswerSchema):
    conversation_id = fields.Integer()
    lead_id = fields.Integer()
