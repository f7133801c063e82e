"""Every Redis client of the app is built here, with the same timeouts and retry policy.

Why: a stalled Redis (accepting connections and never answering) must cost a request at most a
timeout, never a hang; redis-py's own default retries a timeout three times with up to 10 s of
backoff. A refused or reset connection is retried `redis_retries` times after a short backoff (a
failover or a restart); a timeout is not retried (a stalled server stays stalled for longer than a
request should wait).

A `sentinel://` URL (app/platform/redis_urls.py) is the Sentinels that know the master: the client
asks them for it on every new connection (redis-py's `Sentinel.master_for`), so after a failover
the retry above lands on the promoted replica (docs/operations/sentinel.md). The stream process's
asyncio client (`async_redis_client`) reaches the master the same way.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from app.platform.redis_urls import is_sentinel, parse_sentinel_url


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


def sentinel_options(settings) -> dict:
    """Keyword arguments of the connections to the Sentinels themselves (redis-py's and kombu's
    `sentinel_kwargs`): the same timeouts, and the Sentinels' own password if they have one."""
    options = {
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": settings.redis_socket_timeout,
    }
    if settings.redis_sentinel_password:
        options["password"] = settings.redis_sentinel_password
    return options


def redis_client(url: str, settings) -> redis.Redis:
    """A client of the Redis at `url` (or of the master its Sentinels name) with the app's timeouts
    and retry policy."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **redis_options(settings))
    parsed = parse_sentinel_url(url)
    sentinel = Sentinel(
        list(parsed.sentinels), sentinel_kwargs=sentinel_options(settings), **redis_options(settings)
    )
    return sentinel.master_for(
        settings.redis_sentinel_master, db=parsed.db, username=parsed.username, password=parsed.password
    )


def async_redis_client(url: str, settings, **options) -> aioredis.Redis:
    """An asyncio client of the Redis at `url` (or of the master its Sentinels name), for the stream
    process's subscription; `options` are its connections' own (a subscription, idle between
    messages, has no read timeout). Through Sentinels, each new connection asks them for the master,
    so a subscription opened again after a failover lands on the promoted replica."""
    if not is_sentinel(url):
        return aioredis.Redis.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    sentinel = AsyncSentinel(list(parsed.sentinels), sentinel_kwargs=sentinel_options(settings), **options)
    return sentinel.master_for(
        settings.redis_sentinel_master, db=parsed.db, username=parsed.username, password=parsed.password
    )


def limiter_storage(url: str, settings) -> tuple[str, dict]:
    """flask-limiter's storage URI and options for the Redis at `url`: limits' own Sentinel storage
    (`redis+sentinel://h1:p1,h2:p2/<master>`) for Sentinels, reading and writing on the master only
    (a replica's counts lag behind, and one replica may be all there is)."""
    if not is_sentinel(url):
        return url, redis_options(settings)
    parsed = parse_sentinel_url(url)
    hosts = ",".join(f"{host}:{port}" for host, port in parsed.sentinels)
    options = redis_options(settings) | {
        "db": parsed.db,
        "use_replicas": False,
        "sentinel_kwargs": sentinel_options(settings) | {"password": settings.redis_sentinel_password},
    }
    if parsed.password:
        options |= {"username": parsed.username, "password": parsed.password}
    return f"redis+sentinel://{hosts}/{settings.redis_sentinel_master}", options
