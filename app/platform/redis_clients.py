"""Every Redis client of the app is built here, with the same timeouts and retry policy.

Why: a stalled Redis (accepting connections and never answering) must cost a request at most a
timeout, never a hang; redis-py's own default retries a timeout three times with up to 10 s of
backoff. A refused or reset connection is retried `redis_retries` times after a short backoff (a
failover or a restart); a timeout is not retried (a stalled server stays stalled for longer than a
request should wait).
"""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def redis_options(settings) -> dict:
    """Keyword arguments for `redis.Redis.from_url` (and any client taking the same)."""
    return {
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": settings.redis_socket_timeout,
        "retry": Retry(
            ExponentialBackoff(cap=0.5, base=0.05),
            settings.redis_retries,
            supported_errors=(redis.ConnectionError,),
        ),
    }


def redis_client(url: str, settings) -> redis.Redis:
    """A client of the Redis at `url` with the app's timeouts and retry policy."""
    return redis.Redis.from_url(url, **redis_options(settings))
