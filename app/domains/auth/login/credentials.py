"""Logging in: the password (throttled, app/domains/auth/passwords.py), then the user's second
factor (app/domains/auth/login/second_factor.py), and the token pair; the console's login in two steps;
enrolling a second factor, asked with the password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.domains.auth import passwords, sessions
from app.domains.auth.login import second_factor
from app.domains.auth.models import User
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, DomainError, Unauthorized


@dataclass(frozen=True)
class Credentials:
    """What a login sends. An email is unique within a clinic only, so one person may hold accounts
    in several clinics: `clinic_id` picks one when the same password opens more than one."""

    email: str
    password: str
    clinic_id: int | None = None
    code: str | None = None  # of the second factor, for a user who has one (second_factor.py)


def check_password(
    *, session: UnitOfWork, redis, settings, credentials: Credentials, client_address: str
) -> User:
    """The valid, active user of this email and password, else Unauthorized; throttled per email
    and client address (the API's login and the console's use this one check). A password that opens
    several active accounts of the email is a Conflict naming `clinic` (only its holder learns that).
    The second factor is not asked here: `check_credentials` asks it too."""
    keys = passwords.throttle_keys(credentials.email.strip().lower(), client_address or "unknown")
    passwords.count_attempt(redis, keys, settings)
    user = _account_opened(session, redis, keys, credentials)
    passwords.forget_attempt(redis, keys)  # the password was right: not a guess
    return user


def _account_opened(session: UnitOfWork, redis, keys: tuple[str, str, str], credentials: Credentials) -> User:
    """The one active account the password opens (its attempt counted under `keys` already)."""
    email = credentials.email.strip().lower()
    stmt = sa.select(User).where(User.email == email).order_by(User.id)
    if credentials.clinic_id is not None:
        stmt = stmt.where(User.clinic_id == credentials.clinic_id)
    accounts = list(session.scalars(stmt))
    # Every account of the email is verified (an unknown email: one dummy hash, verify_password with
    # None): the argon2 work does not depend on which password matched, and an unknown email costs
    # what an email of one account does, so the timing does not tell which emails have an account.
    opened = [
        user for user in accounts if passwords.verify_password(user.password_hash, credentials.password)
    ]
    if not accounts:
        passwords.verify_password(None, credentials.password)
    if not opened:
        raise Unauthorized("wrong email or password")
    active = [user for user in opened if user.active]
    if not active:
        raise Unauthorized("this user is disabled")
    if len(active) > 1:
        passwords.forget_attempt(redis, keys)  # the password was right: not a guess
        raise Conflict(
            "this email and password open accounts in several clinics; send `clinic` (the clinic's id)",
            errors={"json": {"clinic": ["required: several clinics match"]}},
            code="clinic_required",
        )
    return active[0]


def check_credentials(
    *, session: UnitOfWork, redis, settings, credentials: Credentials, client_address: str, now: datetime
) -> User:
    """`check_password` and the user's second factor with `credentials.code`, as one attempt of the
    throttle: a wrong code stays counted; a missing one (401 `second_factor_required`), or a clinic
    admin made to enrol (403 `second_factor_enrollment_required`), does not (the password was right)."""
    keys = passwords.throttle_keys(credentials.email.strip().lower(), client_address or "unknown")
    passwords.count_attempt(redis, keys, settings)
    user = _account_opened(session, redis, keys, credentials)
    try:
        asks_code = second_factor.asks_code(session=session, user=user, code=credentials.code)
    except DomainError:
        passwords.forget_attempt(redis, keys)
        raise
    if asks_code:
        second_factor.spend(
            session=session, redis=redis, settings=settings, user_id=user.id, code=credentials.code, now=now
        )
    passwords.forget_attempt(redis, keys)
    return user


def login(
    *, session: UnitOfWork, redis, settings, credentials: Credentials, client_address: str, now: datetime
) -> dict:
    """Access and refresh tokens for a valid, active user and their second factor, if they have one;
    throttled per email and client address."""
    user = check_credentials(
        session=session, redis=redis, settings=settings, credentials=credentials,
        client_address=client_address, now=now,
    )  # fmt: skip
    return sessions.issue_pair(session=session, user=user, settings=settings, now=now)


def check_second_step(
    *, session: UnitOfWork, redis, settings, passed: tuple[int, int], attempt: second_factor.Attempt, now
) -> User:
    """A login in two steps (the console's): the user who passed the password (`passed`: their id
    and token version then, which must not have changed) and the code now asked of them."""
    user_id, version = passed
    user = session.get(User, user_id)
    if user is None or not user.active or user.token_version != version:
        raise Unauthorized("log in again")
    second_factor.spend_counted(session, redis, settings, user=user, attempt=attempt, now=now)
    return user


def start_second_factor(
    *, session: UnitOfWork, redis, settings, credentials: Credentials, client_address: str, now: datetime
) -> dict:
    """Enrol a second factor, asked with the password (so an admin whose clinic requires one, and
    who cannot log in without it, can): the secret, its otpauth:// URI and a QR code."""
    user = check_password(
        session=session, redis=redis, settings=settings, credentials=credentials,
        client_address=client_address,
    )  # fmt: skip
    return second_factor.start(session=session, user=user, now=now)


def confirm_second_factor(
    *, session: UnitOfWork, redis, settings, credentials: Credentials, client_address: str, now: datetime
) -> dict:
    """Confirm the enrolment with a first code (`credentials.code`): the ten recovery codes (shown
    once) and a token pair, as a login. A wrong code counts as a failed attempt."""
    user = check_password(
        session=session, redis=redis, settings=settings, credentials=credentials,
        client_address=client_address,
    )  # fmt: skip
    with passwords.counted(redis, passwords.throttle_keys(user.email, client_address or "unknown"), settings):
        codes = second_factor.confirm(session=session, user=user, code=credentials.code or "", now=now)
    return {
        "recovery_codes": codes,
        **sessions.issue_pair(session=session, user=user, settings=settings, now=now),
    }
