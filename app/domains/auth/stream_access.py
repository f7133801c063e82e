"""Who may open a live event stream: a user, by bearer access token or by a short-lived stream token.

A browser's `EventSource` cannot send an Authorization header, so it opens the stream with
`?token=`: a token of kind `stream` from `POST /api/me/stream-token`, living
`stream_token_seconds`. It opens a stream and does nothing else (the API refuses it: it is not an
access token), and a URL that leaked into a log or a proxy's history is of no use a minute later.
Both kinds are checked as every request's token is (tokens.decode, then the user read now: a
disabled user or a revoked token version is refused). API keys have no stream: events are a user's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.domains.auth import tokens
from app.domains.auth.models import User
from app.domains.auth.service import user_actor
from app.platform.db import UnitOfWork
from app.platform.errors import Forbidden, Unauthorized
from app.platform.roles import Actor

STREAM = "stream"


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


def authenticate_stream(*, db, authorization: str | None, stream_token: str | None, now: datetime) -> Actor:
    """The user opening a stream (`db`: the app's Database), else Unauthorized."""
    secret = db.settings.secret_key
    if stream_token:
        claims = tokens.decode(secret=secret, token=stream_token, kind=STREAM, now=now)
    elif (authorization or "").lower().startswith("bearer "):
        claims = tokens.decode(secret=secret, token=authorization[7:].strip(), kind="access", now=now)
    else:
        raise Unauthorized("send Authorization: Bearer <access token>, or ?token=<stream token>")
    return user_actor(db=db, user_id=int(claims["sub"]), token_version=tokens.version_of(claims))
