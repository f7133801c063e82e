"""Answers of engagement: ids, counts and times (no address, no text, no URL)."""

from __future__ import annotations

from marshmallow import fields

from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, UTCDateTime


class LinkClicksOut(AnswerSchema):
    link = fields.Integer(metadata={"description": "the link's place in the message (0: its first link)"})
    clicks = fields.Integer(metadata={"description": "every hit"})
    first_clicked_at = fields.DateTime()


class MessageEngagementOut(AnswerSchema):
    notification_id = fields.Integer()
    channel = fields.String(allow_none=True)
    opened_at = fields.DateTime(
        allow_none=True, metadata={"description": "the first counted open (email.opened), if any"}
    )
    opens = fields.Integer(metadata={"description": "opens counted as engagement"})
    machine_opens = fields.Integer(
        metadata={"description": "a mail proxy's fetches (Apple Mail Privacy Protection, image proxies)"}
    )
    clicks = fields.List(fields.Nested(LinkClicksOut))


class LeadEngagementOut(AnswerSchema):
    lead_id = fields.Integer()
    messages = fields.List(fields.Nested(MessageEngagementOut))


class EngagementStatsArgs(RequestSchema):
    since = UTCDateTime(required=True, metadata={"description": "messages sent at or after this time"})


class EngagementStatsOut(AnswerSchema):
    since = fields.DateTime()
    emails_sent = fields.Integer()
    sms_sent = fields.Integer()
    emails_opened = fields.Integer(metadata={"description": "opened by a person (or a counted machine open)"})
    emails_opened_by_machine_only = fields.Integer()
    messages_clicked = fields.Integer(metadata={"description": "messages with at least one link followed"})
