"""A Redis that fails over through Sentinel, for a test: Debian's redis-server and redis-sentinel
(app/devtools/local_sentinel.py: a master, a replica, three Sentinels with quorum 2) on free ports
under the test's tmp dir, stopped after it. Skips without `redis-sentinel` unless
FOLLOWUP_TEST_REQUIRE names `sentinel` (.ci/run)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from app.devtools.local_sentinel import LocalSentinels, sentinel_binary
from tests.requirements import need


def need_sentinel() -> None:
    need(
        "sentinel",
        sentinel_binary() is not None,
        "needs Redis Sentinel (Debian package `redis-sentinel`: no redis-sentinel on the PATH)",
    )


@contextmanager
def sentinel_cluster(directory: Path):
    """The running cluster (`.url`, `.master_name`, `.kill_master()`, `.wait_for_failover()`)."""
    need_sentinel()
    with LocalSentinels(directory) as cluster:
        yield cluster
