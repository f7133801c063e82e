"""Clinics (the tenant), users and API keys."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.platform.db import Base, JSONType, UTCDateTime
from app.platform.db.protected import EncryptedString
from app.platform.roles import Role

DEFAULT_BUSINESS_HOURS = {
    "mon": ["08:00", "17:00"],
    "tue": ["08:00", "17:00"],
    "wed": ["08:00", "17:00"],
    "thu": ["08:00", "17:00"],
    "fri": ["08:00", "17:00"],
    "sat": None,
    "sun": None,
}


# The roles that own and work leads (a doctor may be told, never given one): the clinic's fallback
# owner is one of them, and so is every assignee (app/domains/assignment/staff.py).
LEAD_OWNER_ROLES = (Role.TREATMENT_COORDINATOR, Role.CLINIC_ADMIN, Role.FRONT_DESK)


class Clinic(Base):
    __tablename__ = "clinics"
    # A sender identity is one clinic's: texts and STOPs to a number or Messaging Service, and mail
    # from a domain, are routed by it. Unique indexes (not constraints) so that SQLite adds them
    # without rebuilding a table every other one references; NULLs (the shared sender) repeat freely.
    __table_args__ = (
        sa.Index("uq_clinics_sms_number", "sms_number", unique=True),
        sa.Index("uq_clinics_sms_messaging_service_sid", "sms_messaging_service_sid", unique=True),
        sa.Index("uq_clinics_email_sender_domain", "email_sender_domain", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="America/New_York")
    business_hours: Mapped[dict] = mapped_column(JSONType, default=lambda: dict(DEFAULT_BUSINESS_HOURS))
    holiday_country: Mapped[str | None] = mapped_column(sa.String(8))
    default_phone_region: Mapped[str] = mapped_column(sa.String(2), default="US")
    assignment_policy: Mapped[str] = mapped_column(sa.String(20), default="round_robin")
    # Automation settings added by later domains (reminder offsets, escalation hours, ...).
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    # The clinic's first, single secret: it signs web forms only (the old `timestamp.body` scheme of
    # app/domains/auth/signing.py) until the clinic retires it, by creating a signing secret with the
    # web-form scope or by asking (app/domains/auth/signing_secrets/); then it is replaced by a value
    # nobody holds and `webhook_secret_retired_at` is set.
    webhook_secret: Mapped[str] = mapped_column(sa.String(128))
    webhook_secret_retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The random key of the clinic's suppression list (app/domains/leads/suppression.py), made at its first
    # erasure: encrypted like any PHI so a rotation rewrites it, never replaced so entries keep matching.
    suppression_key: Mapped[str | None] = mapped_column(EncryptedString)
    # The clinic's own sender identity (app/domains/auth/senders/), copied from settings once checked
    # (an SMS sender must be one the operator assigned to it); None: it sends from the shared
    # SMS_FROM / EMAIL_FROM.
    sms_number: Mapped[str | None] = mapped_column(sa.String(20))  # E.164
    sms_messaging_service_sid: Mapped[str | None] = mapped_column(sa.String(34))  # MG + 32 hex
    email_sender_domain: Mapped[str | None] = mapped_column(sa.String(253))  # of settings.email_from
    # When an admin dismissed the console's setup checklist (app/console/settings/): no longer the
    # page an admin lands on after login, steps left or not.
    setup_dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    users: Mapped[list[User]] = relationship(back_populates="clinic")


class VerifiedSenderDomain(Base):
    """An email domain the platform operator verified for a clinic (its SPF and DKIM are set up for
    the platform's mail): the only domains the clinic's email_from may use. One clinic per domain."""

    __tablename__ = "verified_sender_domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    domain: Mapped[str] = mapped_column(sa.String(253), unique=True)  # lower-case, no trailing dot
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AssignedSmsSender(Base):
    """An SMS number or Twilio Messaging Service the platform operator assigned to a clinic: the only
    ones the clinic's settings may name, and what a text to it is routed by. One clinic per sender;
    never the shared SMS_FROM (app/domains/auth/senders/identity.py)."""

    __tablename__ = "assigned_sms_senders"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # "number" (E.164) or "messaging_service" (MG...)
    sender: Mapped[str] = mapped_column(sa.String(34), unique=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class User(Base):
    __tablename__ = "users"
    # An email is unique within its clinic, not across clinics: a clinic must not learn (by a 409)
    # that an address is another clinic's user, and one person may work for several clinics. Email
    # first: login finds every account of an email through this one index.
    __table_args__ = (sa.UniqueConstraint("email", "clinic_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(32))
    # None until the user sets one through a password-setup link (an invited user, a new clinic's admin).
    password_hash: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    out_of_office: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    max_open_leads: Mapped[int | None] = mapped_column(sa.Integer)
    # Carried by every token issued to the user ("ver") and checked on refresh and on each request:
    # raised when the password, the role or `active` changes, so every earlier token dies at once.
    token_version: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0", nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    clinic: Mapped[Clinic] = relationship(back_populates="users")

    @property
    def password_set(self) -> bool:
        return self.password_hash is not None


DEFAULT_API_KEY_RATE_LIMIT = 1000


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    prefix: Mapped[str] = mapped_column(sa.String(16))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    permissions: Mapped[list] = mapped_column(JSONType)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Requests per minute this key may make, set by the clinic's admin (an integrator's bulk pushes
    # need more than a person at a screen; see app/platform/ratelimit.py).
    rate_limit_per_minute: Mapped[int] = mapped_column(
        sa.Integer, default=DEFAULT_API_KEY_RATE_LIMIT, server_default=str(DEFAULT_API_KEY_RATE_LIMIT)
    )


class SigningSecret(Base):
    """A named secret an integration signs its requests with (app/domains/auth/signing_secrets/):
    scoped to the endpoints it may call, named by its public `key_id`. The secret itself must be
    read back to check an HMAC, so it is stored encrypted (the PHI key), never hashed."""

    __tablename__ = "signing_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    key_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    secret: Mapped[str] = mapped_column("secret_encrypted", EncryptedString)
    scopes: Mapped[list] = mapped_column(JSONType)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A rotation's overlap: the replaced secret still verifies until then, its successor from the start.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaced_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("signing_secrets.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PasswordSetupToken(Base):
    """A one-time link to set a password (a new clinic's admin, an invited user). Only the SHA-256
    of the token is kept: the raw token exists in the link alone."""

    __tablename__ = "password_setup_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    purpose: Mapped[str] = mapped_column(sa.String(16))  # onboarding | invitation
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the token is spent, or when a newer link or a password set another way replaces it.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RefreshToken(Base):
    """One issued refresh token (its JWT's `jti`). Each refresh spends the token and issues the next
    of the same family (one login's chain); a spent token presented again means someone else holds
    a copy, so the whole family is revoked."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    family_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SecondFactor(Base):
    """A user's authenticator app (TOTP, RFC 6238; app/domains/auth/login/second_factor.py). The secret
    is encrypted like PHI. Enrolment writes the row; the first right code confirms it (until then
    login does not ask for it). `last_step` is the time step of the last code accepted: a code is
    taken once, and none from an earlier step after it."""

    __tablename__ = "second_factors"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    secret: Mapped[str] = mapped_column(EncryptedString)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_step: Mapped[int | None] = mapped_column(sa.BigInteger)


class RecoveryCode(Base):
    """One of a user's single-use recovery codes (login when the authenticator is lost): only an
    argon2 hash is kept; the codes are shown once, when made."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
