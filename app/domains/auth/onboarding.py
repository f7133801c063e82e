"""Onboarding: a platform operator creates a clinic and its first admin, admins invite users, and
each sets their own password through a one-time, expiring link; a user changes their own password.

A setup token is 256 random bits shown once (in the link); only its SHA-256 is stored, so a copy of
the database opens no account. Spending one is a guarded UPDATE: of two racing uses exactly one wins.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.auth import passwords, revocation, service, sessions
from app.domains.auth.models import Clinic, PasswordSetupToken, User
from app.platform import roles
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import BadRequest, Conflict, Forbidden, Gone, Unauthorized
from app.platform.roles import Actor, Role

ONBOARDING, INVITATION, RESET = "onboarding", "invitation", "reset"
# A forgotten password's link is sent at most this often per user (a form anyone may post).
RESET_EVERY = timedelta(minutes=5)
PLATFORM_ACTOR = "platform"
SETUP_PATH = "/console/set-password"  # the staff web app's page (app/console/views.py)


def authenticate_platform(*, settings, headers) -> None:
    """Nothing when the request carries the platform operator's token; else Unauthorized (no
    credentials at all) or Forbidden (anything else: a clinic's token or key, a wrong token, or no
    platform token configured). Compared in constant time."""
    authorization = headers.get("Authorization", "")
    if not authorization and not headers.get("X-API-Key"):
        raise Unauthorized("send Authorization: Bearer <platform token>")
    given = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    expected = settings.platform_token
    if not expected:
        raise Forbidden("the platform API is disabled: FOLLOWUP_PLATFORM_TOKEN is not set")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("this endpoint takes the platform operator's token, not a clinic's credentials")


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def setup_link(settings, raw_token: str) -> str:
    # In the fragment: a browser never sends it to a server, so it lands in no access log or Referer.
    return f"{settings.public_base_url.rstrip('/')}{SETUP_PATH}#token={raw_token}"


def issue_setup_token(*, session: UnitOfWork, user: User, purpose: str, settings, now: datetime) -> dict:
    """A new one-time link for the user (earlier open ones are spent): {token, link, expires_at,
    purpose}."""
    revocation.retire_setup_tokens(session=session, user_id=user.id, now=now)
    raw = secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=settings.password_setup_hours)
    session.add(
        PasswordSetupToken(
            clinic_id=user.clinic_id,
            user_id=user.id,
            token_hash=_token_hash(raw),
            purpose=purpose,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return {"token": raw, "link": setup_link(settings, raw), "expires_at": expires_at, "purpose": purpose}


@dataclass(frozen=True)
class NewClinic:
    """A clinic to onboard, as the platform operator names it: its name and timezone, and its
    first admin's email and name (None: the email's local part)."""

    name: str
    timezone: str
    admin_email: str
    admin_name: str | None = None


def onboard_clinic(*, session: UnitOfWork, new: NewClinic, settings, now, hooks: service.AuthHooks) -> dict:
    """A new clinic (with every domain's defaults) and its first clinic_admin, who has no password
    yet: {clinic_id, admin_user_id, setup_token, setup_link, setup_expires_at}. An email already
    taken is a Conflict naming `admin_email`, and nothing is written (the caller's transaction)."""
    email = new.admin_email.strip().lower()
    if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise Conflict(
            "a user with this email already exists",
            errors={"json": {"admin_email": ["taken"]}},
            code="name_taken",
        )
    clinic = service.create_clinic(
        session=session, name=new.name.strip(), timezone=new.timezone, now=now, hooks=hooks
    )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=clinic.id,
            actor=PLATFORM_ACTOR,
            action="clinic.create",
            subject_type="clinic",
            subject_id=clinic.id,
            after={"name": clinic.name, "timezone": clinic.timezone},
            at=now,
        ),
    )
    admin = service.create_user(
        session=session,
        clinic_id=clinic.id,
        actor=None,
        data={
            "email": email,
            "name": new.admin_name or email.partition("@")[0],
            "role": Role.CLINIC_ADMIN.value,
        },
        now=now,
    )
    setup = issue_setup_token(session=session, user=admin, purpose=ONBOARDING, settings=settings, now=now)
    return {
        "clinic_id": clinic.id,
        "admin_user_id": admin.id,
        "setup_token": setup["token"],
        "setup_link": setup["link"],
        "setup_expires_at": setup["expires_at"],
    }


def add_user(
    *, session: UnitOfWork, actor: Actor, data: dict, settings, now: datetime, hooks: service.AuthHooks
) -> User:
    """A user of the actor's clinic. Without a password they are invited: their setup link goes
    out by `hooks.user_invited` (an email through the notifications ledger, in this transaction)."""
    user = service.create_user(session=session, clinic_id=actor.clinic_id, actor=actor, data=data, now=now)
    if data.get("password") is None:
        _invite(session, user, settings, now, hooks)
    if user.active and not user.out_of_office:  # someone new to take the leads waiting for an owner
        for handler in hooks.user_available:
            handler(session=session, user=user, actor=actor, now=now)
    return user


def reinvite_user(
    *, session: UnitOfWork, actor: Actor, user_id: int, settings, now: datetime, hooks: service.AuthHooks
) -> None:
    """A fresh setup link for a user of the actor's clinic who has no password yet (the first one
    expired or got lost); the earlier link stops working."""
    user = service.get_user(session=session, clinic_id=actor.clinic_id, user_id=user_id)
    roles.check_grant(actor, grantee=roles.GRANT_USER, role=user.role)  # an invitation grants the role
    if user.password_hash is not None:
        raise Conflict(
            "this user has set a password already",
            errors={"json": {"user_id": ["password set"]}},
            code="invalid_state",
        )
    if not user.active:
        raise Conflict(
            "this user is disabled", errors={"json": {"user_id": ["disabled"]}}, code="invalid_state"
        )
    _invite(session, user, settings, now, hooks)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=user.clinic_id,
            actor=actor.ref,
            action="user.reinvite",
            subject_type="user",
            subject_id=user.id,
            at=now,
        ),
    )


def _invite(
    session: UnitOfWork,
    user: User,
    settings,
    now: datetime,
    hooks: service.AuthHooks,
    purpose: str = INVITATION,
) -> None:
    setup = issue_setup_token(session=session, user=user, purpose=purpose, settings=settings, now=now)
    clinic = session.get(Clinic, user.clinic_id)
    for handler in hooks.user_invited:
        handler(session=session, user=user, clinic=clinic, setup=setup, now=now)


def request_password_reset(
    *, session: UnitOfWork, email: str, settings, now: datetime, hooks: service.AuthHooks
) -> None:
    """A forgotten password: each active account with that email (one per clinic) is sent a link to
    set a new one, the same one-time link an invitation is (the page of SETUP_PATH). Says nothing of
    whether any account has the email; at most one link per account every RESET_EVERY."""
    users = session.scalars(
        sa.select(User).where(sa.func.lower(User.email) == email.strip().lower(), User.active.is_(True))
    )
    for user in users:
        recent = session.scalar(
            sa.select(PasswordSetupToken.id).where(
                PasswordSetupToken.user_id == user.id,
                PasswordSetupToken.purpose == RESET,
                PasswordSetupToken.created_at > now - RESET_EVERY,
            )
        )
        if recent is None:
            _invite(session, user, settings, now, hooks, purpose=RESET)


def set_password_with_token(*, session: UnitOfWork, token: str, password: str, now: datetime) -> User:
    """Spend a setup token and set its user's password. Unknown: BadRequest; spent, expired or the
    user disabled: Gone (both naming `token`); a password the policy refuses: ValidationFailed
    naming `password`, and the token stays unspent. The user whose password it is."""
    row = session.scalar(
        sa.select(PasswordSetupToken).where(PasswordSetupToken.token_hash == _token_hash(token))
    )
    if row is None:
        raise BadRequest("unknown password-setup token", errors={"json": {"token": ["unknown"]}})
    user = session.get(User, row.user_id)
    if row.used_at is not None:
        raise Gone("this link was already used (or replaced by a newer one)", errors=_token_error("used"))
    if row.expires_at <= now:
        raise Gone(
            "this link has expired; ask your clinic admin for a new one", errors=_token_error("expired")
        )
    if user is None or not user.active:
        raise Gone("this user is disabled", errors=_token_error("user disabled"))
    passwords.check_policy(password, email=user.email)
    spent = session.execute(
        sa.update(PasswordSetupToken)
        .where(PasswordSetupToken.id == row.id, PasswordSetupToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not spent:
        raise Gone("this link was already used", errors=_token_error("used"))
    _replace_password(session, user, password, now)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=user.clinic_id,
            actor=f"user:{user.id}",
            action="user.password_set",
            subject_type="user",
            subject_id=user.id,
            after={"via": row.purpose},
            at=now,
        ),
    )
    return user


def _token_error(reason: str) -> dict:
    return {"json": {"token": [reason]}}


@dataclass(frozen=True)
class PasswordChange:
    """A user's request to change their own password: the current one, the new one, and the address
    it came from (wrong current passwords are counted per address, like failed logins)."""

    current_password: str
    new_password: str
    client_address: str | None


def change_password(
    *, session: UnitOfWork, redis, actor: Actor, change: PasswordChange, settings, now: datetime
) -> dict:
    """Change one's own password: the current one is checked (counted like a login attempt), every
    earlier token and session of the user ends, and a fresh token pair is returned."""
    if actor.user_id is None:
        raise Forbidden("only a signed-in user has a password to change")
    user = session.get(User, actor.user_id)
    keys = passwords.throttle_keys(user.email, change.client_address or "unknown")
    passwords.count_attempt(redis, keys, settings)
    if not passwords.verify_password(user.password_hash, change.current_password):
        raise BadRequest("the current password is wrong", errors={"json": {"current_password": ["wrong"]}})
    passwords.forget_attempt(redis, keys)
    passwords.check_policy(change.new_password, email=user.email, field="new_password")
    _replace_password(session, user, change.new_password, now)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=user.clinic_id,
            actor=actor.ref,
            action="user.password_change",
            subject_type="user",
            subject_id=user.id,
            at=now,
        ),
    )
    return sessions.issue_pair(session=session, user=user, settings=settings, now=now)


def _replace_password(session: UnitOfWork, user: User, password: str, now: datetime) -> None:
    user.password_hash = passwords.hash_password(password)
    user.updated_at = now
    revocation.revoke_access(session=session, user=user, now=now)  # tokens, setup links, open streams
    sessions.revoke_user(session=session, user_id=user.id, now=now)
    session.flush()
