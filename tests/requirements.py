"""What a test needs beyond Python, and what happens when it is missing.

On a newcomer's machine (only Python) a test that needs PostgreSQL, RabbitMQ, libfaketime,
PgBouncer, Redis Sentinel, Chromium, Node.js (with the npm registry) or network namespaces
(`ip netns`, as root) skips with its reason. Where the environment says it must run
(`FOLLOWUP_TEST_REQUIRE=postgres,rabbitmq,faketime`, as `.ci/run` sets it), a missing dependency
fails the test loudly instead: CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

KNOWN = (
    "postgres",
    "rabbitmq",
    "faketime",
    "chromium",
    "redis-server",
    "node",
    "pgbouncer",
    "sentinel",
    "netns",
)


def required() -> set[str]:
    names = {name.strip() for name in os.environ.get("FOLLOWUP_TEST_REQUIRE", "").split(",") if name.strip()}
    unknown = names - set(KNOWN)
    if unknown:
        raise pytest.UsageError(f"FOLLOWUP_TEST_REQUIRE names unknown dependencies: {sorted(unknown)}")
    return names


def need(dependency: str, available: bool, reason: str) -> None:
    """Skip (or, where required, fail) the calling test unless `available`."""
    if available:
        return
    if dependency in required():
        pytest.fail(f"{dependency} is required here (FOLLOWUP_TEST_REQUIRE) but {reason}", pytrace=False)
    pytest.skip(reason)


def need_postgres(database_url: str, why: str) -> None:
    need("postgres", database_url.startswith("postgresql"), f"{why} (DATABASE_URL is not PostgreSQL)")


def need_rabbitmq() -> None:
    need("rabbitmq", shutil.which("rabbitmqctl") is not None, "needs RabbitMQ (no rabbitmqctl on the PATH)")


FAKETIME_LIBRARIES = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
)


def faketime_library() -> str | None:
    """The libfaketime preload library of Debian's `faketime` package, if installed: known by the
    package's `faketime` command on the PATH, so a machine whose PATH lacks it (a newcomer's, as
    .ci/bare-path makes it) skips these tests, even where the library lies on the disk."""
    if shutil.which("faketime") is None:
        return None
    return next((path for path in FAKETIME_LIBRARIES if Path(path).exists()), None)


def need_faketime() -> str:
    library = faketime_library()
    need("faketime", library is not None, "needs libfaketime (Debian package `faketime`)")
    return library
