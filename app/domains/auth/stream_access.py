"""Who may open a live event stream, and keep it open: a user, by bearer access token or by a
short-lived, single-use stream token.

A browser's `EventSource` cannot send an Authorization header, so it opens the stream with
`?token=`: a token of kind `stream` from `POST /api/me/stream-token`, living
`stream_token_seconds`. It opens one stream and does nothing else (the API refuses it: it is not an
access token; its id is remembered in Redis until it expires, so a second opening is refused), and a
URL that leaked into a log or a proxy's history is of no use. Both kinds are checked as every
request's token is (tokens.decode, then the user read now: a disabled user or a revoked token
version is refused). API keys have no stream: events are a user's.

An open stream is not trusted for longer than its user is: the stream process reads the user again
(`still_allowed`) at each heartbeat, before each batch it sends and when told the user changed, and
shapes what it sends with the role read then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domains.auth import tokens
from app.domains.auth.models import User
from app.domains.auth.service import user_actor
from app.platform.db import UnitOfWork
from app.platform.errors import Forbidden, Unauthorized
from app.platform.roles import Actor

STREAM = "stream"
SPENT_KEY = "followup:stream-token:{jti}"  # a stream token already used, until it expires


@dataclass(frozen=True)
class StreamHolder:
    """Who opened a stream: the user as read at the opening, and the token version their credential
    was issued with (a later password, role, email or status change raises the user's)."""

    actor: Actor
    token_version: int


def issue_stream_token(*, session: UnitOfWork, actor: Actor, settings, now: datetime) -> dict:
    """A stream token for the calling user: `{token, expires_at, expires_in, stream_url}`."""
    if actor.user_id is None:
        raise Forbidden("the event stream belongs to users; an API key has none")
    user = session.get(User, actor.user_id)
    lifetime = timedelta(seconds=settings.stream_token_seconds)
    grant = tokens.TokenGrant(
        user_id=user.id, clinic_id=user.clinic_id, kind=STREAM, lifetime=lifetime, version=user.token_version
    )
    return {
        "token": tokens.issue(secret=settings.secret_key, grant=grant, now=now),
        "expires_at": now + lifetime,
        "expires_in": settings.stream_token_seconds,
        "stream_url": settings.stream_url,
    }


def authenticate_stream(
    *, db, authorization: str | None, stream_token: str | None, now: datetime
) -> StreamHolder:
    """The user opening a stream (`db`: the app's Database, its Redis with it), else Unauthorized;
    a stream token is spent by this opening. Redis unreachable: its RedisError (a 503)."""
    secret = db.settings.secret_key
    if stream_token:
        claims = tokens.decode(secret=secret, token=stream_token, kind=STREAM, now=now)
    elif (authorization or "").lower().startswith("bearer "):
        claims = tokens.decode(secret=secret, token=authorization[7:].strip(), kind="access", now=now)
    else:
        raise Unauthorized("send Authorization: Bearer <access token>, or ?token=<stream token>")
    version = tokens.version_of(claims)
    actor = user_actor(db=db, user_id=int(claims["sub"]), token_version=version)
    if stream_token:
        _spend(db.redis, claims, now)
    return StreamHolder(actor=actor, token_version=version)


def _spend(redis, claims: dict, now: datetime) -> None:
    """Remember the token's id until it expires; a token remembered already is refused."""
    jti = claims.get("jti")
    if not isinstance(jti, str):
        raise Unauthorized("invalid stream token: it has no id")
    remaining = max(1, claims["exp"] - int(now.timestamp()))
    if not redis.set(SPENT_KEY.format(jti=jti), 1, nx=True, ex=remaining):
        raise Unauthorized("this stream token was already used; ask for a new one")


def still_allowed(*, db, holder: StreamHolder) -> Actor | None:
    """The stream's user as they are now, or None when they may no longer read it: disabled, gone,
    their credentials revoked (a password, role, email or status change), or of another clinic."""
    try:
        actor = user_actor(db=db, user_id=holder.actor.user_id, token_version=holder.token_version)
    except (Unauthorized, Forbidden):  # Forbidden: a second factor their clinic now requires
        return None
    return actor if actor.clinic_id == holder.actor.clinic_id else None
