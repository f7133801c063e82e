"""Request and response schemas of auth and tenancy."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
from marshmallow import Schema, ValidationError, fields, validate

from app.api import RequestSchema
from app.auth.passwords import MAX_LENGTH as PASSWORD_MAX
from app.auth.passwords import MIN_LENGTH as PASSWORD_MIN
from app.auth.roles import Permission, Role
from app.business_hours import rules as business_hours
from app.delivery.rules import parse_limit

# An admin may raise a key's limit this far (a minute's requests; far beyond one web process).
MAX_API_KEY_RATE_LIMIT = 1_000_000

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
ASSIGNMENT_POLICIES = ("round_robin", "capacity", "source")


def validate_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown timezone {value!r}; use an IANA name like America/Chicago") from exc


def validate_business_hours(value: dict) -> None:
    """Weekday periods (one or several a day) and dated exceptions: app/business_hours reads them."""
    try:
        business_hours.validate_business_hours(value)
    except business_hours.InvalidHours as exc:
        raise ValidationError(str(exc)) from exc


def validate_holiday_country(value: str | None) -> None:
    if value is not None and value.upper() not in holidays.list_supported_countries():
        raise ValidationError(f"no holiday calendar for country {value!r}")


def _password(**kwargs) -> fields.String:
    """A new password: the policy's length here, the rest of it in app/auth/passwords.py."""
    return fields.String(
        load_only=True, validate=validate.Length(min=PASSWORD_MIN, max=PASSWORD_MAX), **kwargs
    )


def _e164(value: str) -> None:
    """A full international number as Twilio names it (+15551234567), one phonenumbers accepts."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError("give the number in E.164, like +15551234567") from exc
    if not phonenumbers.is_valid_number(number) or value != phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.E164
    ):
        raise ValidationError("give the number in E.164, like +15551234567")


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


class LoginIn(RequestSchema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))


class RefreshIn(RequestSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(max=4096))


class LogoutIn(RefreshIn):
    pass


class PasswordSetupIn(RequestSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))
    password = _password(required=True)


class PasswordChangeIn(RequestSchema):
    current_password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))
    new_password = _password(required=True)


class PlatformClinicIn(RequestSchema):
    """A new clinic and its first admin (the platform operator's API and `followup clinics create`)."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), _not_blank])
    timezone = fields.String(required=True, validate=[validate.Length(max=64), validate_timezone])
    admin_email = fields.Email(required=True, validate=validate.Length(max=254))
    admin_name = fields.String(validate=[validate.Length(min=1, max=200), _not_blank])


class PlatformClinicOut(Schema):
    clinic_id = fields.Integer()
    admin_user_id = fields.Integer()
    setup_link = fields.String(metadata={"description": "One-time password-setup link for the admin"})
    setup_token = fields.String(
        metadata={"description": "The link's token (for POST /api/auth/password-setup)"}
    )
    setup_expires_at = fields.DateTime()


class TokenOut(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class MeOut(Schema):
    # A user has no api_key_id; an API key has no user id, email or role.
    id = fields.Integer(attribute="user_id", allow_none=True)
    api_key_id = fields.Integer(allow_none=True)
    email = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    clinic_id = fields.Integer()
    permissions = fields.Method("sorted_permissions")

    def sorted_permissions(self, actor) -> list[str]:
        return sorted(actor.permissions)


class ClinicOut(Schema):
    id = fields.Integer()
    name = fields.String()
    timezone = fields.String()
    business_hours = fields.Dict()
    holiday_country = fields.String(allow_none=True)
    default_phone_region = fields.String()
    assignment_policy = fields.String()
    settings = fields.Dict()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ClinicQuietHoursIn(RequestSchema):
    start = fields.String(
        required=True, validate=[validate.Length(max=5), validate.Regexp(HHMM, error="HH:MM")]
    )
    end = fields.String(
        required=True, validate=[validate.Length(max=5), validate.Regexp(HHMM, error="HH:MM")]
    )


def _rate_limit(text: str) -> None:
    try:
        parse_limit(text)
    except ValueError as error:
        raise ValidationError(str(error)) from None


class ProviderRateLimitsIn(RequestSchema):
    email = fields.String(allow_none=True, validate=[validate.Length(max=64), _rate_limit])
    sms = fields.String(allow_none=True, validate=[validate.Length(max=64), _rate_limit])


class SlaSettingsIn(RequestSchema):
    speed_to_lead_minutes = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=60 * 24 * 30),
        metadata={"description": "business minutes from capture to a person's first attempt (default 5)"},
    )
    first_response_minutes = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=60 * 24 * 30),
        metadata={"description": "business minutes from capture to the first contact (default 1440)"},
    )
    warning_share = fields.Float(
        validate=validate.Range(min=0.05, max=0.99),
        metadata={"description": "the share of the target at which the owner is warned (default 0.8)"},
    )


class ClinicSettingsIn(RequestSchema):
    """Automation settings of a clinic; unknown keys are refused so a typo does not silently do nothing."""

    reminder_offsets_minutes = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=60 * 24 * 30)),
        validate=validate.Length(min=0, max=5),
        metadata={"description": "minutes before a task is due to remind its assignee, e.g. [1440, 15]"},
    )
    escalation_hours = fields.Float(validate=validate.Range(min=0.25, max=24 * 30))
    no_contact_escalation_hours = fields.Float(
        validate=validate.Range(min=1, max=24 * 30),
        metadata={
            "description": "a lead with no contact this long after capture (counted on open days) is "
            "escalated to the clinic admins (default 24)"
        },
    )
    email_from = fields.Email(
        validate=validate.Length(max=254),
        metadata={"description": "the From address of the clinic's email (else EMAIL_FROM)"},
    )
    email_from_name = fields.String(
        validate=[
            validate.Length(min=1, max=100),
            validate.Regexp(r"^[^\r\n<>\"]*$", error="no line breaks, <, > or quotes"),
        ],
        metadata={"description": "the display name beside email_from, e.g. Smile Orthodontics"},
    )
    # The clinic's own SMS sender: its messages go from it and texts to it are routed to the clinic.
    sms_number = fields.String(
        allow_none=True,
        validate=[validate.Length(max=16), _e164],
        metadata={"description": "the clinic's Twilio number in E.164, e.g. +15551234567 (else SMS_FROM)"},
    )
    sms_messaging_service_sid = fields.String(
        allow_none=True,
        validate=[
            validate.Length(max=34),
            validate.Regexp(r"^MG[0-9a-fA-F]{32}$", error="a Twilio Messaging Service SID: MG + 32 hex"),
        ],
        metadata={"description": "send through this Twilio Messaging Service instead of one number"},
    )
    sms_help_text = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=320),
        metadata={"description": "the answer to a text of HELP (default: the clinic's name and STOP hint)"},
    )
    # My next call (app/tasks/claims.py).
    next_task_lease_minutes = fields.Integer(
        validate=validate.Range(min=1, max=240),
        metadata={"description": "how long POST /api/me/next-task holds a task for its caller (default 10)"},
    )
    next_task_team_overdue = fields.Boolean(
        metadata={"description": "next-task may hand out a teammate's unclaimed overdue task (default true)"},
    )
    # The contact policy of automated messages to leads (app/messaging/policy.py).
    quiet_hours = fields.Nested(
        ClinicQuietHoursIn,
        allow_none=True,
        metadata={"description": "local (the lead's timezone) {start, end}; default 20:00-08:00; null: none"},
    )
    stale_after_days = fields.Integer(
        validate=validate.Range(min=1, max=365),
        metadata={"description": "days without activity before an open lead is stale (default 7)"},
    )
    orphan_after_hours = fields.Float(
        validate=validate.Range(min=0, max=24 * 30),
        metadata={
            "description": "hours an open lead may go without a next step (no open task, pending "
            "automated step or active sequence) before the orphan sweep gives its owner a "
            "follow-up task (default 24)"
        },
    )
    erase_closed_after_months = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=1200),
        metadata={
            "description": "months after a lead is lost or converted before its person's data is "
            "erased (a daily sweep; an anonymised tombstone stays); 0 or null: never"
        },
    )
    daily_message_cap = fields.Integer(
        validate=validate.Range(min=0, max=50),
        metadata={"description": "automated messages per lead per local day (default 2)"},
    )
    # Outreach limits (seed 004): app/messaging/policy.py holds automated messages to one lead back.
    max_automated_messages_per_lead = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=10_000),
        metadata={
            "description": "automated messages a lead may get in all; more are skipped (default: none)"
        },
    )
    min_message_interval_minutes = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=60 * 24 * 30),
        metadata={
            "description": "minutes between two automated messages to a lead; a sooner one waits (default 0)"
        },
    )
    sla = fields.Nested(
        SlaSettingsIn,
        allow_none=True,
        metadata={
            "description": "SLA clock targets: speed_to_lead_minutes, first_response_minutes, warning_share"
        },
    )
    min_touch_gap_minutes = fields.Integer(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=0, max=60 * 24 * 30),
        metadata={
            "description": "minutes between any two touches of a lead, a person's included; an automated "
            "message or sequence step sooner waits for the gap's end (default 0)"
        },
    )
    provider_rate_limits = fields.Nested(
        ProviderRateLimitsIn,
        allow_none=True,
        metadata={
            "description": 'per channel, e.g. {"sms": "200/hour"}: messages over it wait for the next '
            "window (app/notifications/worker/rate_limits.py); null: no limit"
        },
    )
    # When automation's call tasks fall due (app/intelligence): the first open moment, or the
    # best-answered open hour within a window after it.
    call_timing = fields.String(
        validate=validate.OneOf(["first_slot", "best_slot"]),
        metadata={"description": "first_slot (default) or best_slot: automated call tasks at the best hour"},
    )
    best_slot_window_hours = fields.Integer(
        validate=validate.Range(min=1, max=168),
        metadata={"description": "how far past the first open moment best_slot may look (default 24)"},
    )


class ClinicUpdateIn(RequestSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    timezone = fields.String(validate=[validate.Length(max=64), validate_timezone])
    business_hours = fields.Dict(validate=validate_business_hours)
    holiday_country = fields.String(
        allow_none=True, validate=[validate.Length(max=8), validate_holiday_country]
    )
    default_phone_region = fields.String(validate=[validate.Length(max=2), validate.Regexp(r"^[A-Z]{2}$")])
    assignment_policy = fields.String(validate=validate.OneOf(ASSIGNMENT_POLICIES))
    settings = fields.Nested(ClinicSettingsIn)


class UserOut(Schema):
    id = fields.Integer()
    clinic_id = fields.Integer()
    email = fields.String()
    name = fields.String()
    role = fields.String()
    active = fields.Boolean()
    out_of_office = fields.Boolean()
    timezone = fields.String(allow_none=True)
    max_open_leads = fields.Integer(allow_none=True)
    # False until an invited user (or a new clinic's admin) sets theirs through the setup link.
    password_set = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class UserUpdateIn(RequestSchema):
    email = fields.Email(validate=validate.Length(max=254))
    name = fields.String(validate=validate.Length(min=1, max=200))
    role = fields.String(validate=validate.OneOf([r.value for r in Role]))
    password = _password()
    active = fields.Boolean()
    out_of_office = fields.Boolean()
    timezone = fields.String(allow_none=True, validate=[validate.Length(max=64), validate_timezone])
    max_open_leads = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=1_000_000))


class UserCreateIn(UserUpdateIn):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))
    # Without a password the user is invited: the setup link goes to their email.
    password = _password(metadata={"description": "Leave out to email the user a password-setup link"})


def _rate_limit_field(**kwargs) -> fields.Integer:
    return fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_API_KEY_RATE_LIMIT),
        metadata={"description": "Requests per minute this key may make (default 1,000)"},
        **kwargs,
    )


class ApiKeyIn(RequestSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    # Erasure is a clinic admin's decision on a person's request, never an integration's.
    permissions = fields.List(
        fields.String(validate=validate.OneOf([p.value for p in Permission if p != Permission.ERASE])),
        required=True,
        validate=validate.Length(min=1, max=len(Permission)),
    )
    rate_limit_per_minute = _rate_limit_field()


class ApiKeyUpdateIn(RequestSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    rate_limit_per_minute = _rate_limit_field()


class ApiKeyOut(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String()
    permissions = fields.List(fields.String())
    rate_limit_per_minute = fields.Integer()
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)


class ApiKeyCreatedOut(ApiKeyOut):
    key = fields.String(metadata={"description": "The raw key: shown once, never again"})


class UserQueryArgs(RequestSchema):
    role = fields.String(validate=validate.OneOf([r.value for r in Role]))
