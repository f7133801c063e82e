"""Access and refresh tokens (JWT, HS256, signed with SECRET_KEY)."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from app.platform.errors import Unauthorized

ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenGrant:
    """What a token says: whose it is (user, clinic, the user's token version), its kind (access or
    refresh) and how long it lives; a refresh token's id (`jti`) and chain (`family`)."""

    user_id: int
    clinic_id: int
    kind: str
    lifetime: timedelta
    version: int = 0
    jti: str | None = None
    family: str | None = None


def issue(*, secret: str, grant: TokenGrant, now: datetime) -> str:
    claims = {
        "ver": grant.version,  # the user's token_version: a token of an earlier version is refused
        "sub": str(grant.user_id),
        "clinic": grant.clinic_id,
        "type": grant.kind,
        "iat": int(now.timestamp()),
        "exp": int((now + grant.lifetime).timestamp()),
        "jti": grant.jti or uuid.uuid4().hex,
    }
    if grant.family is not None:
        claims["fam"] = grant.family  # a refresh token's chain (app/domains/auth/sessions.py)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode(*, secret: str, token: str, kind: str, now: datetime) -> dict:
    """The claims of a valid token of the given kind, else Unauthorized."""
    claims = dict(_verified_claims(secret, token))  # a copy: the cached claims stay as verified
    # Expiry is checked against the `now` passed in, so tests can move the clock.
    if claims["exp"] <= int(now.timestamp()):
        raise Unauthorized("token expired")
    if claims.get("type") != kind:
        raise Unauthorized(f"a {kind} token is required")
    return claims


def verified_claims(*, secret: str, token: str, kind: str) -> dict:
    """The claims of a token of the given kind signed by us, expired or not (logout accepts those)."""
    claims = dict(_verified_claims(secret, token))
    if claims.get("type") != kind:
        raise Unauthorized(f"a {kind} token is required")
    return claims


def version_of(claims: dict) -> int:
    """The token version a token was issued with (tokens from before versions existed: 0)."""
    version = claims.get("ver", 0)
    return version if isinstance(version, int) else -1


@functools.lru_cache(maxsize=4096)
def _verified_claims(secret: str, token: str) -> dict:
    # A client sends the same access token with every request: its signature is checked once per
    # process, not per request (PyJWT's parsing and HMAC are a visible share of a lead capture).
    # Only verified tokens are kept (an exception is not cached); expiry and kind are checked on
    # every use above.
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "type"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
