"""A second factor for staff: an authenticator app's codes (TOTP, RFC 6238) and single-use recovery
codes.

Any user may enrol; a clinic that sets `require_admin_second_factor` makes it a condition of its
clinic admins' login. Enrolment is asked with the password (`start`: the secret, its otpauth:// URI
and a QR code of it), and confirmed with a first code (`confirm`: ten recovery codes, shown once,
and a token pair, so an admin made to enrol is signed in by it). From then on every login, the
API's and the console's, needs a code besides the password (`asks_code`, `spend`; the login itself
is app/domains/auth/login/credentials.py). A code counts as an attempt of the password throttle
(app/domains/auth/passwords.py): a wrong one stays counted; and wrong codes are counted per user
besides, which only a right code or the window's end clears (never a right password). A code is
taken once: the time step of the last one accepted is kept, and a code of that step or an earlier
one is refused. Codes of the step before and after the current one pass (a clock a little off, a
code typed as it turned). API keys are not affected: they are not logins.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.domains.auth import passwords
from app.domains.auth.models import Clinic, RecoveryCode, SecondFactor, User
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from app.platform.roles import Actor, Role

ISSUER = "Follow-up Engine"  # what the authenticator app shows beside the account
RECOVERY_CODES = 10
CLOCK_DRIFT_STEPS = 1  # codes of one step (30 s) either side of now pass
REQUIRE_FOR_ADMINS = "require_admin_second_factor"  # the clinic's setting

# argon2id with light parameters: a recovery code is 60 random bits, not a word a person chose, so
# its hash needs no memory-hard cost against a dictionary, and a login checks up to ten of them.
_recovery_hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 letters and digits, none read as another


@dataclass(frozen=True)
class Attempt:
    """A code offered for a user, from where (the throttle counts it per email and address)."""

    code: str | None
    client_address: str


def required_by(role: str, clinic_settings: dict | None) -> bool:
    """Whether a clinic of these settings makes a second factor a condition for a user of this role."""
    return role == Role.CLINIC_ADMIN.value and (clinic_settings or {}).get(REQUIRE_FOR_ADMINS) is True


def required_for(session: UnitOfWork, user: User) -> bool:
    """Whether the user's clinic makes a second factor a condition of the user's login."""
    return required_by(user.role, session.get(Clinic, user.clinic_id).settings)


def check_enrolment(*, required: bool, enrolled: bool) -> None:
    """Forbidden `second_factor_enrollment_required` when the clinic requires a factor the user has
    not enrolled: at login, at a refresh, and on every request of a session opened before the clinic
    required it (until the user enrols)."""
    if required and not enrolled:
        raise Forbidden(
            "your clinic requires a second factor for clinic admins: enrol one with "
            "POST /api/auth/second-factor (your email and password), then confirm it",
            code="second_factor_enrollment_required",
        )


def refuse_unenrolled(session: UnitOfWork, user: User) -> None:
    """`check_enrolment` for the user as they are now."""
    check_enrolment(required=required_for(session, user), enrolled=enrolled(session, user.id) is not None)


def enrolled(session: UnitOfWork, user_id: int) -> SecondFactor | None:
    """The user's confirmed second factor, if any."""
    factor = session.get(SecondFactor, user_id)
    return factor if factor is not None and factor.confirmed_at is not None else None


def asks_code(*, session: UnitOfWork, user: User, code: str | None) -> bool:
    """Whether the login must spend a code of the user's second factor (after the right password);
    Unauthorized `second_factor_required` when the user has one and no code came, Forbidden
    `second_factor_enrollment_required` when they have none and their clinic requires one."""
    if enrolled(session, user.id) is None:
        check_enrolment(required=required_for(session, user), enrolled=False)
        return False
    if not code:
        raise Unauthorized(
            "this account has a second factor: send `code`, from your authenticator app or a recovery code",
            errors={"json": {"code": ["required"]}},
            code="second_factor_required",
        )
    return True


def spend(*, session: UnitOfWork, redis, settings, user_id: int, code: str, now: datetime) -> None:
    """Spend a code of the user's factor (six digits: the authenticator's, of a step after the last
    one taken; else one of the unused recovery codes); Unauthorized naming `code` when it is wrong
    or used already. Counted per user (passwords.code_counted): TooManyRequests after too many wrong."""
    with passwords.code_counted(redis, user_id, settings):
        if not _spent(session, user_id, "".join(code.split()), now):
            raise Unauthorized(
                "wrong or already used code", errors={"json": {"code": ["wrong or already used"]}}
            )


def spend_counted(session: UnitOfWork, redis, settings, *, user: User, attempt: Attempt, now: datetime):
    """`spend`, as an attempt of the password throttle (taken back when the code is right): a code
    asked on its own (the console's second step, disabling, new recovery codes)."""
    keys = passwords.throttle_keys(user.email, attempt.client_address or "unknown")
    with passwords.counted(redis, keys, settings):
        spend(
            session=session, redis=redis, settings=settings, user_id=user.id, code=attempt.code or "", now=now
        )


def _spent(session: UnitOfWork, user_id: int, code: str, now: datetime) -> bool:
    factor = session.get(SecondFactor, user_id)
    if factor is None:
        return False
    if not _is_totp(code):
        return _spend_recovery_code(session, user_id, code, now)
    step = _matching_step(factor.secret, code, now)
    return step is not None and _take_step(session, user_id, step)


def _is_totp(code: str) -> bool:
    return code.isdigit() and len(code) == 6


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step within the window whose code this is, else None."""
    if not _is_totp(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - CLOCK_DRIFT_STEPS, current + CLOCK_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _take_step(session: UnitOfWork, user_id: int, step: int) -> bool:
    # A guarded write, not read-then-write: of two logins racing with one code exactly one passes.
    taken = session.execute(
        sa.update(SecondFactor)
        .where(
            SecondFactor.user_id == user_id,
            sa.or_(SecondFactor.last_step.is_(None), SecondFactor.last_step < step),
        )
        .values(last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(taken)


def _spend_recovery_code(session: UnitOfWork, user_id: int, code: str, now: datetime) -> bool:
    unused = session.scalars(
        sa.select(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    normalized = code.lower().replace("-", "")
    for row in unused:
        if _recovery_code_matches(row.code_hash, normalized):
            spent = session.execute(
                sa.update(RecoveryCode)
                .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            return bool(spent)
    return False


def _recovery_code_matches(code_hash: str, normalized: str) -> bool:
    try:
        return _recovery_hasher.verify(code_hash, normalized)
    except (VerificationError, InvalidHashError):
        return False


def _new_recovery_codes(session: UnitOfWork, user_id: int, now: datetime) -> list[str]:
    """Ten fresh codes (`xxxx-xxxx-xxxx`, 60 random bits each) in place of any earlier ones."""
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))  # 60 bits
        codes.append("-".join(raw[i : i + 4] for i in range(0, 12, 4)))
        session.add(RecoveryCode(user_id=user_id, code_hash=_recovery_hasher.hash(raw), created_at=now))
    session.flush()
    return codes


# --- enrolment ---------------------------------------------------------------------------------


def start(*, session: UnitOfWork, user: User, now: datetime) -> dict:
    """A new secret for the user (replacing an enrolment not yet confirmed), its otpauth:// URI and
    a QR code of the URI (an SVG data URI) to scan; Conflict if a confirmed factor exists already
    (disable it first)."""
    if enrolled(session, user.id) is not None:
        raise Conflict("you have a second factor already: disable it first to enrol another")
    secret = pyotp.random_base32()
    factor = session.get(SecondFactor, user.id)
    if factor is None:
        factor = SecondFactor(user_id=user.id, clinic_id=user.clinic_id, created_at=now)
        session.add(factor)
    factor.secret, factor.created_at, factor.last_step = secret, now, None
    session.flush()
    clinic = session.get(Clinic, user.clinic_id)
    uri = pyotp.TOTP(secret).provisioning_uri(name=f"{user.email} ({clinic.name})", issuer_name=ISSUER)
    return {"secret": secret, "otpauth_uri": uri, "qr_code": segno.make(uri, error="m").svg_data_uri(scale=4)}


def confirm(*, session: UnitOfWork, user: User, code: str, now: datetime) -> list[str]:
    """Confirm the started enrolment with a first code from the app; the user's ten recovery codes
    (shown this once). BadRequest naming `code` when it is wrong; Conflict if nothing was started."""
    factor = session.get(SecondFactor, user.id)
    if factor is None or factor.confirmed_at is not None:
        raise Conflict("no enrolment is waiting: start one first (POST /api/auth/second-factor)")
    step = _matching_step(factor.secret, "".join(code.split()), now)
    if step is None or not _take_step(session, user.id, step):
        raise BadRequest("wrong code", errors={"json": {"code": ["wrong: enter the code the app shows now"]}})
    factor.confirmed_at = now
    codes = _new_recovery_codes(session, user.id, now)
    _audit(session, user, actor=f"user:{user.id}", action="user.second_factor_enrolled", now=now)
    return codes


def _own_factor(session: UnitOfWork, actor: Actor) -> User:
    if actor.user_id is None:
        raise Forbidden("only a signed-in user has a second factor")
    user = session.get(User, actor.user_id)
    if enrolled(session, user.id) is None:
        raise Conflict("you have no second factor")
    return user


def status(*, session: UnitOfWork, actor: Actor) -> dict:
    """Whether the signed-in user has a second factor, and how many recovery codes are left."""
    if actor.user_id is None:
        raise Forbidden("only a signed-in user has a second factor")
    left = session.scalar(
        sa.select(sa.func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == actor.user_id, RecoveryCode.used_at.is_(None))
    )
    user = session.get(User, actor.user_id)
    return {
        "enabled": enrolled(session, actor.user_id) is not None,
        "required": required_for(session, user),
        "recovery_codes_left": left,
    }


def disable(*, session: UnitOfWork, redis, settings, actor: Actor, attempt: Attempt, now: datetime) -> None:
    """Remove one's own second factor, proven by a code (the app's or a recovery code)."""
    user = _own_factor(session, actor)
    if required_for(session, user):
        raise Conflict("your clinic requires a second factor of clinic admins: you cannot remove yours")
    spend_counted(session, redis, settings, user=user, attempt=attempt, now=now)
    _remove(session, user.id)
    _audit(session, user, actor=actor.ref, action="user.second_factor_disabled", now=now)


def regenerate_recovery_codes(
    *, session: UnitOfWork, redis, settings, actor: Actor, attempt: Attempt, now: datetime
) -> list[str]:
    """Ten new recovery codes for one's own factor (the earlier ones stop working), proven by a code."""
    user = _own_factor(session, actor)
    spend_counted(session, redis, settings, user=user, attempt=attempt, now=now)
    codes = _new_recovery_codes(session, user.id, now)
    _audit(session, user, actor=actor.ref, action="user.recovery_codes_regenerated", now=now)
    return codes


def reset(*, session: UnitOfWork, actor: Actor, user: User, now: datetime) -> None:
    """An admin removes a user's second factor (a lost phone and no recovery code): audited; the
    user logs in with the password and, if required, enrols anew. NotFound if there is none."""
    if session.get(SecondFactor, user.id) is None:
        raise NotFound(f"user {user.id} has no second factor")
    _remove(session, user.id)
    _audit(session, user, actor=actor.ref, action="user.second_factor_reset", now=now)


def _remove(session: UnitOfWork, user_id: int) -> None:
    session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    session.execute(sa.delete(SecondFactor).where(SecondFactor.user_id == user_id))


def _audit(session: UnitOfWork, user: User, *, actor: str, action: str, now: datetime) -> None:
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=user.clinic_id,
            actor=actor,
            action=action,
            subject_type="user",
            subject_id=user.id,
            at=now,
        ),
    )
