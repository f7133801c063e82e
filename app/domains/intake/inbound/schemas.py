"""Request and response schemas of the signed inbound-message and caller-ID webhooks."""

from __future__ import annotations

from marshmallow import fields, post_load, validate

from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, StrictBoolean, UTCDateTime


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
    answered = StrictBoolean(
        allow_none=True,
        metadata={
            "description": "false: nobody at the clinic picked up (so is a 0-second call): a missed "
            "call makes a callback task due at once and is not a contact"
        },
    )

    @post_load
    def name_caller(self, data, **kwargs):
        data["from"] = data.pop("from_")
        return data


class ReceivedOut(AnswerSchema):
    """The answer to an inbound message or call: received, and nothing more. Whether the number or
    address belongs to a lead is not said, so a secret's holder cannot test who is a patient
    (docs/guides/web-forms.md, "What the answers say")."""

    received = fields.Boolean(metadata={"description": "always true: the request was taken"})


class UnclaimedMessageOut(AnswerSchema):
    """A message to the platform's shared sender that no clinic texted that phone from lately."""

    id = fields.Integer()
    channel = fields.String(metadata={"description": "sms or whatsapp"})
    sender = fields.String(allow_none=True, metadata={"description": "the phone it came from (E.164)"})
    body = fields.String(allow_none=True)
    received_at = UTCDateTime()


class HandToClinicIn(RequestSchema):
    """The clinic a waiting message is for."""

    clinic_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**31 - 1))


class HandedOut(AnswerSchema):
    id = fields.Integer()
    handed_to_clinic_id = fields.Integer()
    handled_at = UTCDateTime()
