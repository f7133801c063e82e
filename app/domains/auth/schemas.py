"""Request and response schemas of auth and tenancy."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
from marshmallow import ValidationError, fields, validate

from app.domains.auth.passwords import MAX_LENGTH as PASSWORD_MAX
from app.domains.auth.passwords import MIN_LENGTH as PASSWORD_MIN
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, StrictBoolean, id_field
from app.platform.api.emails import Email
from app.platform.roles import Permission, Role

# An admin may raise a key's limit this far (a minute's requests; far beyond one web process).
MAX_API_KEY_RATE_LIMIT = 1_000_000

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
ASSIGNMENT_POLICIES = ("round_robin", "capacity", "source")


def validate_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown timezone {value!r}; use an IANA name like America/Chicago") from exc


def validate_holiday_country(value: str | None) -> None:
    if value is not None and value.upper() not in holidays.list_supported_countries():
        raise ValidationError(f"no holiday calendar for country {value!r}")


def _password(**kwargs) -> fields.String:
    """A new password: the policy's length here, the rest of it in app/domains/auth/passwords.py."""
    return fields.String(
        load_only=True, validate=validate.Length(min=PASSWORD_MIN, max=PASSWORD_MAX), **kwargs
    )


def e164(value: str) -> None:
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


class CredentialsIn(RequestSchema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))
    clinic = id_field(
        allow_none=True,  # no load_default: a default would make generated clients require it
        metadata={
            "description": "The clinic's id: needed only when the email and password open accounts "
            "in several clinics (a 409 `clinic_required` says so)"
        },
    )


SECOND_FACTOR_CODE = validate.Length(min=6, max=64)


class LoginIn(CredentialsIn):
    code = fields.String(
        load_only=True,
        validate=SECOND_FACTOR_CODE,
        metadata={
            "description": "For an account with a second factor: the 6-digit code of the authenticator "
            "app, or an unused recovery code (without it, a 401 `second_factor_required` says so)"
        },
    )


class SecondFactorConfirmIn(CredentialsIn):
    code = fields.String(
        required=True,
        load_only=True,
        validate=SECOND_FACTOR_CODE,
        metadata={"description": "The 6-digit code the authenticator app shows now"},
    )


class SecondFactorCodeIn(RequestSchema):
    code = fields.String(
        required=True,
        load_only=True,
        validate=SECOND_FACTOR_CODE,
        metadata={"description": "A code of the authenticator app, or an unused recovery code"},
    )


class RefreshIn(RequestSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(max=4096))


class LogoutIn(RefreshIn):
    pass


class PasswordSetupIn(RequestSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))
    password = _password(required=True)


class PasswordResetIn(RequestSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))


class PasswordChangeIn(RequestSchema):
    current_password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))
    new_password = _password(required=True)


class PlatformClinicIn(RequestSchema):
    """A new clinic and its first admin (the platform operator's API and `followup clinics create`)."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), _not_blank])
    timezone = fields.String(required=True, validate=[validate.Length(max=64), validate_timezone])
    admin_email = Email(required=True, validate=validate.Length(max=254))
    admin_name = fields.String(validate=[validate.Length(min=1, max=200), _not_blank])


class PlatformClinicOut(AnswerSchema):
    clinic_id = fields.Integer()
    admin_user_id = fields.Integer()
    setup_link = fields.String(metadata={"description": "One-time password-setup link for the admin"})
    setup_token = fields.String(
        metadata={"description": "The link's token (for POST /api/auth/password-setup)"}
    )
    setup_expires_at = fields.DateTime()


class TokenOut(AnswerSchema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class SecondFactorEnrolmentOut(AnswerSchema):
    secret = fields.String(metadata={"description": "The TOTP secret (base32), to type into the app"})
    otpauth_uri = fields.String(metadata={"description": "otpauth://totp/... : what the QR code holds"})
    qr_code = fields.String(metadata={"description": "The QR code of otpauth_uri: a data:image/svg+xml URI"})


class RecoveryCodesOut(AnswerSchema):
    recovery_codes = fields.List(
        fields.String(), metadata={"description": "Ten single-use codes, shown this once: keep them safe"}
    )


class SecondFactorConfirmedOut(TokenOut, RecoveryCodesOut):
    pass


class SecondFactorStatusOut(AnswerSchema):
    enabled = fields.Boolean(metadata={"description": "Login asks for a code"})
    required = fields.Boolean(metadata={"description": "The clinic requires one of you (clinic admins)"})
    recovery_codes_left = fields.Integer()


class StreamTokenOut(AnswerSchema):
    token = fields.String(metadata={"description": "Opens the stream once: `?token=` (kind `stream`)"})
    expires_at = fields.DateTime(metadata={"description": "A stream must be opened before this"})
    expires_in = fields.Integer(metadata={"description": "Seconds left to open a stream with it"})
    stream_url = fields.String(metadata={"description": "Where the stream is served (the stream process)"})


class MeOut(AnswerSchema):
    # A user has no api_key_id; an API key has no user id, email or role.
    id = fields.Integer(attribute="user_id", allow_none=True)
    api_key_id = fields.Integer(allow_none=True)
    email = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    clinic_id = fields.Integer()
    permissions = fields.Method("sorted_permissions")

    def sorted_permissions(self, actor) -> list[str]:
        return sorted(actor.permissions)


class ClinicOut(AnswerSchema):
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


class UserOut(AnswerSchema):
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
    email = Email(validate=validate.Length(max=254))
    name = fields.String(validate=validate.Length(min=1, max=200))
    role = fields.String(validate=validate.OneOf([r.value for r in Role]))
    password = _password()
    active = StrictBoolean()
    out_of_office = StrictBoolean()
    timezone = fields.String(allow_none=True, validate=[validate.Length(max=64), validate_timezone])
    max_open_leads = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=1_000_000))


class UserCreateIn(UserUpdateIn):
    email = Email(required=True, validate=validate.Length(max=254))
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


class ApiKeyOut(AnswerSchema):
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


class SenderDomainIn(RequestSchema):
    """An email domain the platform operator verified for a clinic (its SPF and DKIM records)."""

    domain = fields.String(
        required=True,
        validate=[
            validate.Length(min=3, max=253),
            validate.Regexp(
                r"^(?=.{3,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?$",
                error="a domain name, e.g. smileortho.com",
            ),
        ],
        metadata={"description": "e.g. smileortho.com: the clinic's email_from may then use it"},
    )


MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
SID_FORM = "a Twilio Messaging Service SID: MG + 32 hex"


def sms_sender(value: str) -> None:
    """A Twilio Messaging Service SID (MG + 32 hex), else a number in E.164."""
    if value.startswith("MG"):
        if not MESSAGING_SERVICE_SID.match(value):
            raise ValidationError(SID_FORM)
        return
    e164(value)


class SmsSenderIn(RequestSchema):
    """An SMS sender of the engine's Twilio account the platform operator assigns to a clinic."""

    sender = fields.String(
        required=True,
        validate=[validate.Length(min=2, max=34), sms_sender],
        metadata={
            "description": "a number in E.164 (+14155550100) or a Messaging Service SID (MG + 32 hex): "
            "the clinic's sms_number or sms_messaging_service_sid may then name it"
        },
    )


class SmsSenderOut(AnswerSchema):
    clinic_id = fields.Integer()
    sender = fields.String()
    kind = fields.String(metadata={"description": "number or messaging_service"})
    assigned_at = fields.DateTime()
    in_use = fields.Boolean(metadata={"description": "the clinic's settings name it now"})


class SenderDomainOut(AnswerSchema):
    clinic_id = fields.Integer()
    domain = fields.String()
    verified_at = fields.DateTime()
