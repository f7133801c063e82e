from marshmallow import ValidationError, fields, post_dump, validate

from app.domains.auth.schemas import HHMM
from app.domains.outbound import rules
from app.domains.outbound.models import Channel, DeliveryStatus
from app.platform import phi_policy
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, StrictBoolean, UTCDateTime


class InboxArgs(RequestSchema):
    unread = StrictBoolean(load_default=False, metadata={"description": "only unread notifications"})


class InboxItemOut(AnswerSchema):
    id = fields.Integer()
    kind = fields.String()
    title = fields.String()
    body = fields.String()
    link = fields.String(allow_none=True)
    read_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


# The channels of outgoing messages to people outside the clinic, which an admin lists and retries.
LEAD_CHANNELS = [Channel.EMAIL.value, Channel.SMS.value, Channel.INSTAGRAM.value, Channel.WHATSAPP.value]


class DeliveryQueryArgs(RequestSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in DeliveryStatus]))
    channel = fields.String(validate=validate.OneOf(LEAD_CHANNELS))
    since = UTCDateTime(metadata={"description": "created at or after this time"})


class RetryFilterIn(RequestSchema):
    status = fields.String(
        validate=validate.OneOf([DeliveryStatus.FAILED.value, DeliveryStatus.DEAD.value]),
        metadata={"description": "failed or dead; both when omitted"},
    )
    channel = fields.String(validate=validate.OneOf(LEAD_CHANNELS))
    since = UTCDateTime(metadata={"description": "only messages created at or after this time"})


class RetryOneIn(RequestSchema):
    confirm_may_duplicate = StrictBoolean(
        load_default=False,
        metadata={
            "description": "required (true) to retry an SMS whose outcome is unknown: it may "
            "already have reached the lead"
        },
    )


class RetryCountOut(AnswerSchema):
    requeued = fields.Integer()


class DeliveryOut(AnswerSchema):
    id = fields.Integer()
    channel = fields.String()
    kind = fields.String()
    template = fields.String(allow_none=True)
    to_address = fields.String(allow_none=True)
    lead_id = fields.Integer(allow_none=True)
    recipient_user_id = fields.Integer(allow_none=True)
    title = fields.String(
        metadata={
            "optional": True,
            "description": "the subject (email) or the start of the message; to a lead: present only "
            "for a reader with `lead:phi` (merge fields may have written the patient's name into it)",
        }
    )
    status = fields.String(metadata={"description": ", ".join(s.value for s in DeliveryStatus)})
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    provider_message_id = fields.String(allow_none=True)
    dedupe_key = fields.String()
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    sending_at = fields.DateTime(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    opened_at = fields.DateTime(allow_none=True)

    @post_dump
    def _withhold_rendered_text(self, data: dict, **kwargs) -> dict:
        return phi_policy.withhold_rendered(data, phi_policy.current_reader(), ("title",))


def _validate_channels(value: dict) -> None:
    if not isinstance(value, dict):
        raise ValidationError("must be an object keyed by kind")
    unknown = sorted(set(value) - set(rules.STAFF_KINDS))
    if unknown:
        raise ValidationError(f"unknown kinds: {', '.join(unknown)}; use {', '.join(rules.STAFF_KINDS)}")
    for kind, chosen in value.items():
        allowed = rules.ALLOWED_CHANNELS[kind]
        if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
            raise ValidationError(f"{kind}: give a list of channels ({', '.join(allowed)})")
        bad = sorted(set(chosen) - set(allowed))
        if bad:
            raise ValidationError(f"{kind}: unknown channels {', '.join(bad)}; use {', '.join(allowed)}")


def _validate_hhmm(value: str) -> None:
    if not HHMM.match(value):
        raise ValidationError("give HH:MM (24-hour)")


class QuietHoursIn(RequestSchema):
    start = fields.String(required=True, validate=[validate.Length(max=5), _validate_hhmm])
    end = fields.String(required=True, validate=[validate.Length(max=5), _validate_hhmm])


class PreferencesIn(RequestSchema):
    channels = fields.Dict(
        validate=_validate_channels,
        metadata={
            "description": 'per kind, e.g. {"reminder": ["in_app", "sms"], "digest": []}; in-app is always on'
        },
    )
    quiet_hours = fields.Nested(
        QuietHoursIn,
        allow_none=True,
        metadata={"description": "local time range in your timezone (may span midnight); null for none"},
    )
    sms_number = fields.String(
        allow_none=True,
        validate=[
            validate.Length(max=16),
            validate.Regexp(r"^\+[1-9]\d{6,14}$", error="give E.164, like +15551234567"),
        ],
    )
    summary_frequency = fields.String(
        validate=validate.OneOf(rules.SUMMARY_FREQUENCIES),
        metadata={
            "description": "The analytics summary email (clinic admins only): daily (the default), "
            "weekly (Mondays), or off"
        },
    )


class PreferencesOut(AnswerSchema):
    channels = fields.Dict()
    quiet_hours = fields.Dict(allow_none=True)
    sms_number = fields.String(allow_none=True)
    timezone = fields.String()
    summary_frequency = fields.String()
