"""Use cases of auth and tenancy: login, tokens, clinics, users, API keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.auth import passwords, queries, revocation, sessions, tokens
from app.domains.auth.login import credentials as logins
from app.domains.auth.login import second_factor
from app.domains.auth.models import LEAD_OWNER_ROLES, ApiKey, Clinic, User
from app.domains.auth.senders import identity as sender_identity
from app.platform import roles
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from app.platform.roles import ROLE_PERMISSIONS, Actor, Role


@dataclass(frozen=True)
class AuthHooks:
    """What the domains above auth do at its moments, which auth cannot import: a new clinic's
    setup steps (default stages, sources, rules), in order; the hand-over of a user gone unavailable;
    telling an invited user their password-setup link; the leads waiting for an owner when someone
    may take them again. The engine's (app/bootstrap.py, from CLINIC_SETUP, USER_UNAVAILABLE,
    USER_INVITED and USER_AVAILABLE of app/handlers.py): a view is handed the app's
    Wiring and passes `wiring.auth` to the use case."""

    clinic_setup: tuple[Callable[..., None], ...]
    user_unavailable: tuple[Callable[..., None], ...]
    user_invited: tuple[Callable[..., None], ...]
    user_available: tuple[Callable[..., None], ...] = ()


# --- passwords (app/domains/auth/passwords.py) ---------------------------------------------------------

hash_password = passwords.hash_password
verify_password = passwords.verify_password


# --- tokens ----------------------------------------------------------------------------------


# Login, with its second factor: app/domains/auth/login/.
Credentials = logins.Credentials
login = logins.login


# Refresh and logout: app/domains/auth/sessions.py (refresh tokens rotate, a reused one revokes its family).
refresh = sessions.refresh


def hash_api_key(raw_key: str) -> str:
    # API keys are 256-bit random strings: a fast hash is safe (no dictionary to attack).
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _user_actor(db, user_id: int, version: int) -> Actor:
    """The Actor of an active user, read now: a disabled user or changed role counts at once, a
    token of an earlier token version (password, role or status changed since) is refused, and so
    is a clinic admin without the second factor their clinic now requires (403)."""
    found = queries.actor_of_user(db, user_id)
    if not found or not found[0][4]:
        raise Unauthorized("this user is disabled or no longer exists")
    user_id, clinic_id, role, email, _, token_version = found[0]
    if version != token_version:
        raise Unauthorized("this token was revoked (password, role or status changed); log in again")
    if role == Role.CLINIC_ADMIN.value:  # the only role a clinic may require a second factor of
        ((clinic_settings, confirmed_at),) = queries.factor_of_user(db, user_id)
        second_factor.check_enrolment(
            required=second_factor.required_by(role, clinic_settings), enrolled=confirmed_at is not None
        )
    return Actor(
        clinic_id=clinic_id,
        user_id=user_id,
        role=role,
        email=email,
        permissions=ROLE_PERMISSIONS[Role(role)],
    )


def user_actor(*, db, user_id: int, token_version: int) -> Actor:
    """The Actor of an active user whose credentials are of `token_version` (a console session's
    user, read on each request), else Unauthorized."""
    return _user_actor(db, user_id, token_version)


def authenticate_request(*, db, headers, now: datetime) -> Actor:
    """The Actor behind a request's bearer token or API key, else Unauthorized (`db`: the app's
    Database, its settings with it)."""
    settings = db.settings
    authorization = headers.get("Authorization", "")
    api_key = headers.get("X-API-Key")
    if authorization.lower().startswith("bearer "):
        claims = tokens.decode(
            secret=settings.secret_key, token=authorization[7:].strip(), kind="access", now=now
        )
        return _user_actor(db, int(claims["sub"]), tokens.version_of(claims))
    if api_key:
        with db.unit_of_work() as session:
            key = session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == hash_api_key(api_key)))
            if key is None or key.revoked_at is not None:
                raise Unauthorized("invalid or revoked API key")
            key.last_used_at = now
            return Actor(
                clinic_id=key.clinic_id,
                api_key_id=key.id,
                permissions=frozenset(key.permissions),
                rate_limit_per_minute=key.rate_limit_per_minute,
            )
    raise Unauthorized("send Authorization: Bearer <token> or X-API-Key")


# --- clinics ---------------------------------------------------------------------------------


def create_clinic(*, session: UnitOfWork, name: str, now: datetime, hooks: AuthHooks, **fields) -> Clinic:
    """A new tenant, with whatever the setup steps (`hooks.clinic_setup`) give every clinic."""
    clinic = Clinic(name=name, webhook_secret=secrets.token_urlsafe(32), created_at=now, updated_at=now)
    for key, value in fields.items():
        setattr(clinic, key, value)
    session.add(clinic)
    session.flush()
    for step in hooks.clinic_setup:
        step(session=session, clinic=clinic, now=now)
    return clinic


def get_clinic(*, session: UnitOfWork, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound("clinic not found")
    return clinic


def clinics_on_shared_sms_sender(*, session: UnitOfWork, config) -> list[Clinic]:
    """The clinics that text from the shared SMS_FROM: those whose sender (their Messaging Service,
    else their number, as app/domains/outbound/worker/sending.py picks it) is none of their own or
    is SMS_FROM itself, whatever a clinic once claimed."""
    shared = config.sms_from or ""
    sender = sa.func.coalesce(Clinic.sms_messaging_service_sid, Clinic.sms_number, shared)
    return list(session.scalars(sa.select(Clinic).where(sender == shared).order_by(Clinic.id)))


def clinics_on_shared_whatsapp_sender(*, session: UnitOfWork, config) -> list[Clinic]:
    """The clinics that send WhatsApp from the shared FOLLOWUP_WHATSAPP_FROM: those with no WhatsApp
    number of their own, or that number itself (as outbound's `whatsapp_sender` picks it). Read in
    Python: the number sits in the clinic's settings document, and a STOP is rare."""
    shared = config.whatsapp_from or ""
    if not shared:
        return []
    every = session.scalars(sa.select(Clinic).order_by(Clinic.id))
    return [c for c in every if ((c.settings or {}).get("whatsapp_number") or shared) == shared]


CLINIC_FIELDS = (
    "name",
    "timezone",
    "business_hours",
    "holiday_country",
    "assignment_policy",
    "default_phone_region",
    "settings",
)


def update_clinic(*, session: UnitOfWork, actor: Actor, changes: dict, now: datetime, config) -> Clinic:
    """Change the clinic's fields and settings; a new sender identity is checked and taken first
    (app/domains/auth/senders/identity.py). `config`: the app's Settings (the Twilio account to ask)."""
    clinic = get_clinic(session=session, clinic_id=actor.clinic_id)
    before = {k: getattr(clinic, k) for k in CLINIC_FIELDS}
    for key, value in changes.items():
        if key == "settings":
            _check_fallback_owner(session, clinic.id, value.get("fallback_owner_id"))
            value = {**(clinic.settings or {}), **value}
            sender_identity.apply(session=session, clinic=clinic, settings_values=value, config=config)
        setattr(clinic, key, value)
    clinic.updated_at = now
    after = {k: getattr(clinic, k) for k in CLINIC_FIELDS}
    old, new = audit.changes(before, after)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=clinic.id,
            actor=actor.ref,
            action="clinic.update",
            subject_type="clinic",
            subject_id=clinic.id,
            before=old,
            after=new,
            at=now,
        ),
    )
    return clinic


def _check_fallback_owner(session: UnitOfWork, clinic_id: int, user_id: int | None) -> None:
    """The fallback owner (who takes a lead when nobody else may) is an active user of the clinic
    whose role owns leads."""
    if user_id is None:
        return
    user = session.get(User, user_id)
    if user is None or user.clinic_id != clinic_id or not user.active or user.role not in LEAD_OWNER_ROLES:
        raise ValidationFailed(
            "settings.fallback_owner_id",
            f"user {user_id} is not an active coordinator, admin or front desk user of this clinic",
        )


def dismiss_setup(*, session: UnitOfWork, actor: Actor, now: datetime) -> Clinic:
    """An admin's "I will finish setting up later": the console stops opening on its checklist for
    every admin of the clinic (the checklist stays under Settings). Audited; a second dismissal keeps
    the first one's time."""
    clinic = get_clinic(session=session, clinic_id=actor.clinic_id)
    if clinic.setup_dismissed_at is None:
        clinic.setup_dismissed_at = now
        audit.record(
            session,
            audit.AuditEntry(
                clinic_id=clinic.id, actor=actor.ref, action="clinic.setup_dismissed",
                subject_type="clinic", subject_id=clinic.id, before=None, after=None, at=now,
            ),
        )  # fmt: skip
    return clinic


# --- users -----------------------------------------------------------------------------------

USER_AUDIT_FIELDS = ("email", "name", "role", "active", "out_of_office", "timezone", "max_open_leads")


def _user_snapshot(user: User) -> dict:
    return {k: getattr(user, k) for k in USER_AUDIT_FIELDS}


def list_users(*, session: UnitOfWork, clinic_id: int, role: str | None = None) -> list[User]:
    stmt = sa.select(User).where(User.clinic_id == clinic_id).order_by(User.id)
    if role:
        stmt = stmt.where(User.role == role)
    return list(session.scalars(stmt))


def get_user(*, session: UnitOfWork, clinic_id: int, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.clinic_id != clinic_id:
        raise NotFound(f"user {user_id} not found")
    return user


def _email_taken(session: UnitOfWork, *, clinic_id: int, email: str, besides: int | None = None) -> bool:
    stmt = sa.select(User.id).where(User.clinic_id == clinic_id, User.email == email)
    if besides is not None:
        stmt = stmt.where(User.id != besides)
    return session.scalar(stmt) is not None


def _email_conflict() -> Conflict:
    return Conflict(
        "a user with this email already exists", errors={"json": {"email": ["taken"]}}, code="name_taken"
    )


def _flush_user(session: UnitOfWork) -> None:
    """Write the user in a savepoint: a concurrent request that took the email after our check
    loses on the unique index, and gets the same 409 as one that lost before it."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _email_conflict() from None


def create_user(
    *, session: UnitOfWork, clinic_id: int, actor: Actor | None, data: dict, now: datetime
) -> User:
    """A user of the clinic; without a `password` they have none until they set one (onboarding.py
    invites them). `actor` None: the platform operator (a new clinic's first admin, the CLI, the
    demo seed), outside every clinic, so no grant rule applies; any clinic's caller is checked."""
    if actor is not None:
        roles.check_grant(actor, grantee=roles.GRANT_USER, role=data["role"])
    email = data["email"].strip().lower()
    # Unique within the clinic only (uq_users_clinic_id_email): another clinic's user with this email
    # is invisible here, so creating one answers exactly as for a fresh email.
    if _email_taken(session, clinic_id=clinic_id, email=email):
        raise _email_conflict()
    password = data.get("password")
    if password is not None:
        passwords.check_policy(password, email=email)
    user = User(
        clinic_id=clinic_id,
        email=email,
        name=data["name"],
        role=data["role"],
        password_hash=hash_password(password) if password is not None else None,
        active=data.get("active", True),
        out_of_office=data.get("out_of_office", False),
        timezone=data.get("timezone"),
        max_open_leads=data.get("max_open_leads"),
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    _flush_user(session)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=clinic_id,
            actor=actor.ref if actor else audit.SYSTEM,
            action="user.create",
            subject_type="user",
            subject_id=user.id,
            after=_user_snapshot(user),
            at=now,
        ),
    )
    return user


def update_user(
    *, session: UnitOfWork, actor: Actor, user_id: int, data: dict, now: datetime, hooks: AuthHooks
) -> User:
    """Change a user; becoming inactive or out of office hands their work over (`hooks.user_unavailable`),
    coming back lets them take the leads waiting for an owner (`hooks.user_available`)."""
    user = get_user(session=session, clinic_id=actor.clinic_id, user_id=user_id)
    # Changing a user (their password, email, role) is granting their role: held by the actor, both
    # the one they have and the one they get.
    for role in {user.role, data.get("role", user.role)}:
        roles.check_grant(actor, grantee=roles.GRANT_USER, role=role)
    before = _user_snapshot(user)
    was_available = user.active and not user.out_of_office
    if "email" in data:
        email = data["email"].strip().lower()
        if _email_taken(session, clinic_id=user.clinic_id, email=email, besides=user.id):
            raise _email_conflict()
        data = {**data, "email": email}
    if user.id == actor.user_id and data.get("active") is False:
        raise ValidationFailed("active", "you cannot disable yourself")
    if "password" in data:
        passwords.check_policy(data["password"], email=data.get("email", user.email))
    revokes = revocation.changes_access(user, data)
    for key, value in data.items():
        if key == "password":
            user.password_hash = hash_password(value)
        else:
            setattr(user, key, value)
    if revokes:
        revocation.revoke_access(session=session, user=user, now=now)
    user.updated_at = now
    _flush_user(session)
    old, new = audit.changes(before, _user_snapshot(user))
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=user.clinic_id,
            actor=actor.ref,
            action="user.update",
            subject_type="user",
            subject_id=user.id,
            before=old,
            after=new,
            at=now,
        ),
    )
    available = user.active and not user.out_of_office
    moment = hooks.user_unavailable if was_available and not available else ()
    if available and not was_available:  # back from out of office, or active again
        moment = hooks.user_available
    for handler in moment:
        handler(session=session, user=user, actor=actor, now=now)
    return user


def reset_second_factor(*, session: UnitOfWork, actor: Actor, user_id: int, now: datetime) -> None:
    """Remove a user's second factor (they lost the phone and their recovery codes); audited. It is
    a grant of the user's role, as changing them is."""
    user = get_user(session=session, clinic_id=actor.clinic_id, user_id=user_id)
    roles.check_grant(actor, grantee=roles.GRANT_USER, role=user.role)
    second_factor.reset(session=session, actor=actor, user=user, now=now)


# --- API keys --------------------------------------------------------------------------------
