"""Redis URLs: a Redis itself (`redis://`, `rediss://`, `unix://`) or the Sentinels that know which
Redis is the master now (`sentinel://h1:p1;sentinel://h2:p2`, kombu's form for its Sentinel
transport; docs/operations/sentinel.md).

Pure parsing, no client: the settings check a URL at start with it, and every client (the app's,
the rate limiter's, Celery's broker) is built from what it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
SENTINEL_SCHEME = "sentinel://"


@dataclass(frozen=True)
class SentinelUrl:
    """The Sentinels to ask, and the database and credentials of the master they name. Like kombu,
    the master's database, user and password are read from the first URL."""

    sentinels: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEME)


def is_redis(url: str) -> bool:
    """Whether `url` reaches a Redis, directly or through Sentinels."""
    return url.startswith(REDIS_SCHEMES) or is_sentinel(url)


def parse_sentinel_url(url: str) -> SentinelUrl:
    """`sentinel://[[user]:password@]host:port[/db];sentinel://host:port...`; ValueError saying what is
    wrong (never the password)."""
    sentinels, first = [], None
    for part in url.split(";"):
        if not part.strip():
            continue
        if not is_sentinel(part.strip()):
            raise ValueError(f"every ;-separated part must start with {SENTINEL_SCHEME}")
        parsed = urlsplit(part.strip())
        try:
            port = parsed.port
        except ValueError:
            port = None
        if not parsed.hostname or port is None:
            raise ValueError(f"each Sentinel needs a host and a port ({SENTINEL_SCHEME}host:26379)")
        sentinels.append((parsed.hostname, port))
        first = first or parsed
    if first is None:
        raise ValueError(f"no Sentinel in it ({SENTINEL_SCHEME}host:26379;{SENTINEL_SCHEME}host2:26379)")
    db = first.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError("the database after the first Sentinel's address must be a number (/0)")
    return SentinelUrl(
        sentinels=tuple(sentinels),
        db=int(db),
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
    )


def redis_url_problem(variable: str, url: str, sentinel_master: str | None) -> str | None:
    """What makes a Redis URL unusable, naming `variable` (None: nothing): a malformed Sentinel list,
    or Sentinels without the name of the master they watch."""
    if not is_sentinel(url):
        return None
    try:
        parse_sentinel_url(url)
    except ValueError as error:
        return f"{variable} is not a usable Sentinel URL: {error}"
    if not sentinel_master:
        return (
            f"{variable} names Sentinels but FOLLOWUP_REDIS_SENTINEL_MASTER is not set: give the name "
            "of the master they watch (their `sentinel monitor <name> ...`)"
        )
    return None


def redis_settings_problem(redis_url: str, broker_url: str | None, sentinel_master: str | None) -> str | None:
    """What makes REDIS_URL or CELERY_BROKER_URL unusable (None: nothing)."""
    return redis_url_problem("REDIS_URL", redis_url, sentinel_master) or redis_url_problem(
        "CELERY_BROKER_URL", broker_url or "", sentinel_master
    )
