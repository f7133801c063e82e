"""Rate limits per caller (user or API key; the client address for anonymous calls), kept in Redis.

An API view's limit is checked by its access declaration's check, once the caller is authenticated
(`check_access` in app/__init__.py calls `Limiter.check`); every other request (the console's
pages, the OpenAPI document, an unknown URL) by `limit_unguarded`, a before_request hook, per client
address. A user (or an anonymous caller) has the settings' limit; an API key has its own, set by
the clinic's admin on the key (an integrator pushing an event's leads needs more than a person at a
screen). Every limited answer carries the IETF draft's RateLimit-Limit, RateLimit-Remaining and
RateLimit-Reset (seconds until the window resets); an exceeded limit is a 429 with Retry-After in
the API's JSON error shape.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import redis
from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.platform import access
from app.platform.redis_clients import limiter_storage

EXEMPT_PATHS = ("/healthz", "/readyz", "/metrics")
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def caller_key() -> str:
    """The bucket of a request: its clinic and actor once authenticated, else the client address."""
    actor = g.get("actor")
    if actor is not None:
        return f"{actor.clinic_id}:{actor.ref}"
    return f"addr:{get_remote_address()}"


def caller_limit(per_minute: int) -> str:
    """The caller's limit: an API key's own, else `per_minute` (the settings' value for users)."""
    actor = g.get("actor")
    own = getattr(actor, "rate_limit_per_minute", None)
    return f"{own or per_minute} per minute"


def rate_limit_headers(limiter: Limiter, response):
    """RateLimit-* on a limited answer; on a 429 also Retry-After (whole seconds, at least 1)."""
    current = limiter.current_limit
    if current is None:
        return response
    try:
        # The storage rounds the window's end up to a whole second: never name more than the window.
        reset = min(max(math.ceil(current.reset_at - time.time()), 0), current.limit.get_expiry())
    except redis.RedisError:
        # Redis went away after the limit was checked: the answer stands, only its headers are unknown.
        return response
    limit, remaining, reset_header = RATE_LIMIT_HEADERS
    response.headers[limit] = str(current.limit.amount)
    response.headers[remaining] = str(max(current.remaining, 0))
    response.headers[reset_header] = str(reset)
    # Only the limiter's own 429: another refusal (the login throttle, app/domains/auth/passwords.py)
    # says when its own window ends, which this limit's minute would misstate.
    if response.status_code == 429 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(max(reset, 1))
    return response


class StorageOutageLog(logging.Filter):
    """flask-limiter logs every request it lets through unchecked as an ERROR with a traceback; while
    Redis is down that buries the log. Say it as one WARNING without the traceback, at most once per
    `every` seconds: the outage itself is reported by /readyz and the broker's own logs."""

    def __init__(self, every: float = 60.0, monotonic=time.monotonic):
        super().__init__()
        self.every, self.monotonic = every, monotonic
        self._last: float | None = None
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or "Swallowing error" not in record.getMessage():
            return True
        with self._lock:
            now = self.monotonic()
            if self._last is not None and now - self._last < self.every:
                return False
            self._last = now
        error = record.exc_info[1]
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg, record.args = (
            "Rate limits not checked: their Redis is unreachable (%s)",
            (type(error).__name__,),
        )
        record.exc_info = record.exc_text = None
        return True


def warn_untrusted_forwarding(app: Flask) -> None:
    """With no trusted proxy hops, a request carrying X-Forwarded-For came through a proxy the app
    was not told about: every client then shares the proxy's address for rate limits and login
    throttling (fifty failures would lock every login). Say so once per process, in the log."""
    if app.config["SETTINGS"].trusted_proxy_hops > 0:
        return
    warned = threading.Event()

    def check() -> None:
        if not warned.is_set() and "X-Forwarded-For" in request.headers:
            warned.set()
            logging.getLogger(__name__).warning(
                "Requests arrive with X-Forwarded-For but FOLLOWUP_TRUSTED_PROXY_HOPS is 0: every client "
                "counts as the proxy's address for rate limits and login throttling; set it to the "
                "number of proxies in front of the web process"
            )

    app.before_request(check)


def limit_unguarded(limiter: Limiter) -> None:
    """before_request: the limit of a request no access declaration checks (a view's check does it
    after authenticating, so its caller has their own bucket)."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or not access.guarded(view, request.method):
        limiter.check()


def init_rate_limits(app: Flask) -> Limiter | None:
    settings = app.config["SETTINGS"]
    warn_untrusted_forwarding(app)  # login throttling relies on the client address too
    if settings.rate_limit_per_minute <= 0:
        return None  # switched off (FOLLOWUP_RATE_LIMIT_PER_MINUTE=0)
    storage_uri, storage_options = limiter_storage(settings.redis_url, settings)
    app.config.update(
        # The headers are written by rate_limit_headers (flask-limiter's own would be the X-RateLimit-*
        # set, with Reset as an epoch time and Retry-After on every answer).
        RATELIMIT_HEADERS_ENABLED=False,
        RATELIMIT_STORAGE_OPTIONS=storage_options,
        # A Redis outage must not take the API down with it: let requests through, log it.
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    per_minute = settings.rate_limit_per_minute
    limiter = Limiter(
        key_func=caller_key,
        app=app,
        storage_uri=storage_uri,
        default_limits=[lambda: caller_limit(per_minute)],
        strategy="fixed-window",
        key_prefix="followup-rl",
        auto_check=False,  # an API view's check_access checks it after authentication
    )
    app.before_request(lambda: limit_unguarded(limiter))
    limiter.request_filter(lambda: request.path in EXEMPT_PATHS or request.method == "OPTIONS")
    limiter.logger.addFilter(StorageOutageLog())
    app.after_request(lambda response: rate_limit_headers(limiter, response))
    return limiter
