"""Sessions: token pairs whose refresh token rotates on every use.

A login starts a family (one device's chain of refresh tokens). Each refresh spends the token it
was given and issues the next of the same family; a spent token presented again means a copy is in
other hands (the thief's or the user's, whichever comes second), so the whole family is revoked and
both must log in again. Logout revokes its family; a password change revokes every family of the
user. A console session is recorded the same way (one row, its own family, that no token names: its
id lives only in the console's signed cookie), so logout and a password change end it on the server
too, not only in the browser that logged out. Access tokens stay stateless: they live
`access_token_minutes`, and the user's token_version (raised by a password, role or status change)
ends them at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.auth import tokens
from app.domains.auth.login import second_factor
from app.domains.auth.models import RefreshToken, User
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Unauthorized

REUSED = "this refresh token was already used, so its session is ended on every device; log in again"


def issue_pair(
    *, session: UnitOfWork, user: User, settings, now: datetime, family: str | None = None
) -> dict:
    """An access token and a refresh token; the refresh token is recorded (a new family unless one
    is given: a login starts one, a refresh continues its own)."""
    if family is None:
        _forget_expired(session, user.id, now)
        family = uuid.uuid4().hex
    jti = uuid.uuid4().hex
    refresh_lifetime = timedelta(days=settings.refresh_token_days)
    _record(session, user, jti=jti, family=family, now=now, expires_at=now + refresh_lifetime)
    whose = {"user_id": user.id, "clinic_id": user.clinic_id, "version": user.token_version}
    access_grant = tokens.TokenGrant(
        kind="access", lifetime=timedelta(minutes=settings.access_token_minutes), **whose
    )
    refresh_grant = tokens.TokenGrant(
        kind="refresh", lifetime=refresh_lifetime, jti=jti, family=family, **whose
    )
    return {
        "access_token": tokens.issue(secret=settings.secret_key, grant=access_grant, now=now),
        "refresh_token": tokens.issue(secret=settings.secret_key, grant=refresh_grant, now=now),
        "token_type": "Bearer",
        "expires_in": settings.access_token_minutes * 60,
    }


def refresh(*, db, settings, refresh_token: str, now: datetime) -> dict:
    """The next token pair of the refresh token's family, spending it; a spent one revokes its
    family. The revocation commits before the 401 is raised (`db`: it owns the transaction). A clinic
    admin whose clinic requires a second factor they have not enrolled: 403, nothing spent."""
    claims = tokens.decode(secret=settings.secret_key, token=refresh_token, kind="refresh", now=now)
    with db.unit_of_work() as session:
        outcome = _rotate(session, claims, settings, now)
    if isinstance(outcome, str):
        raise Unauthorized(outcome)
    return outcome


def _rotate(session: UnitOfWork, claims: dict, settings, now: datetime) -> dict | str:
    """The new pair, or why the token is refused (after revoking its family if it was reused)."""
    jti = claims.get("jti")
    row = session.get(RefreshToken, jti) if isinstance(jti, str) else None
    if row is None or str(row.user_id) != claims["sub"]:
        return "unknown refresh token; log in again"
    if row.revoked_at is not None:
        return "this session has ended; log in again"
    # Spent with a guard, not read-then-write: of two requests racing with one token exactly one
    # gets the next pair, and the other counts as the reuse it looks like.
    spent = session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.jti == row.jti, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not spent:
        revoked = revoke_family(session=session, family_id=row.family_id, now=now)
        audit.record(
            session,
            audit.AuditEntry(
                clinic_id=row.clinic_id,
                actor=audit.SYSTEM,
                action="auth.refresh_family_revoked",
                subject_type="user",
                subject_id=row.user_id,
                after={"reason": "a spent refresh token was presented again", "tokens_revoked": revoked},
                at=now,
            ),
        )
        return REUSED
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return "this user is disabled or no longer exists"
    if tokens.version_of(claims) != user.token_version:
        return "this token was revoked (password, role or status changed); log in again"
    # Raised, not returned: the transaction rolls back, so the token stays unspent for after enrolment.
    second_factor.refuse_unenrolled(session, user)
    return issue_pair(session=session, user=user, settings=settings, now=now, family=row.family_id)


def logout(*, session: UnitOfWork, settings, refresh_token: str, now: datetime) -> None:
    """End the session (the family) of a refresh token we signed, expired or not."""
    claims = tokens.verified_claims(secret=settings.secret_key, token=refresh_token, kind="refresh")
    jti = claims.get("jti")
    row = session.get(RefreshToken, jti) if isinstance(jti, str) else None
    if row is None:
        return  # issued before sessions were recorded, or already forgotten: nothing to end
    revoked = revoke_family(session=session, family_id=row.family_id, now=now)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=row.clinic_id,
            actor=f"user:{row.user_id}",
            action="auth.logout",
            subject_type="user",
            subject_id=row.user_id,
            after={"tokens_revoked": revoked},
            at=now,
        ),
    )


def start_browser_session(*, session: UnitOfWork, user: User, settings, now: datetime) -> str:
    """A console session's record; its id (the cookie carries it) is checked on every page."""
    _forget_expired(session, user.id, now)
    session_id = uuid.uuid4().hex
    # The cookie slides (12 h idle); this caps a session however busy it stays.
    expires_at = now + timedelta(days=settings.refresh_token_days)
    _record(session, user, jti=session_id, family=session_id, now=now, expires_at=expires_at)
    return session_id


def _record(
    session: UnitOfWork, user: User, *, jti: str, family: str, now: datetime, expires_at: datetime
) -> None:
    """A refresh token's or a console session's row: what revocation (logout, a password change)
    finds and ends."""
    session.add(
        RefreshToken(
            jti=jti,
            family_id=family,
            user_id=user.id,
            clinic_id=user.clinic_id,
            issued_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()


def browser_session_is_live(*, session: UnitOfWork, session_id: str, user_id: int, now: datetime) -> bool:
    row = session.get(RefreshToken, session_id)
    return row is not None and row.user_id == user_id and row.revoked_at is None and row.expires_at > now


def end_browser_session(*, session: UnitOfWork, session_id: str, now: datetime) -> None:
    revoke_family(session=session, family_id=session_id, now=now)


def revoke_family(*, session: UnitOfWork, family_id: str, now: datetime) -> int:
    return _revoke(session, RefreshToken.family_id == family_id, now)


def revoke_user(*, session: UnitOfWork, user_id: int, now: datetime) -> int:
    """End every session of a user (their password changed)."""
    return _revoke(session, RefreshToken.user_id == user_id, now)


def _revoke(session: UnitOfWork, condition, now: datetime) -> int:
    return session.execute(
        sa.update(RefreshToken)
        .where(condition, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount


def _forget_expired(session: UnitOfWork, user_id: int, now: datetime) -> None:
    # Each login sweeps its user's dead rows, so the table holds about the live sessions.
    session.execute(
        sa.delete(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.expires_at < now)
        .execution_options(synchronize_session=False)
    )
