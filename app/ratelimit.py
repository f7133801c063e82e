"""Rate limits per caller (user or API key; the client address for anonymous calls), kept in Redis.

flask-limiter checks the limit in a before_request hook registered after the authentication hook, so
the caller is known; an exceeded limit is a 429 with Retry-After in the API's JSON error shape.
"""

from __future__ import annotations

from flask import Flask, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.redis_clients import redis_options

EXEMPT_PATHS = ("/healthz", "/readyz", "/metrics")


def caller_key() -> str:
    """The bucket of a request: its clinic and actor once authenticated, else the client address."""
    actor = g.get("actor")
    if actor is not None:
        return f"{actor.clinic_id}:{actor.ref}"
    return f"addr:{get_remote_address()}"


def init_rate_limits(app: Flask) -> Limiter | None:
    settings = app.config["SETTINGS"]
    if settings.rate_limit_per_minute <= 0:
        return None  # switched off (FOLLOWUP_RATE_LIMIT_PER_MINUTE=0)
    app.config.update(
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_STORAGE_OPTIONS=redis_options(settings),
        # A Redis outage must not take the API down with it: let requests through, log it.
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    limiter = Limiter(
        key_func=caller_key,
        app=app,
        storage_uri=settings.redis_url,
        default_limits=[f"{settings.rate_limit_per_minute} per minute"],
        strategy="fixed-window",
        key_prefix="followup-rl",
    )
    limiter.request_filter(lambda: request.path in EXEMPT_PATHS or request.method == "OPTIONS")
    return limiter
