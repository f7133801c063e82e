"""The database's clock: the time of record for workers and sweeps, whatever their host's clock says."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

# SQLite's CURRENT_TIMESTAMP is whole seconds: its own clock with milliseconds instead, naive UTC.
_NOW = {
    "postgresql": sa.text("SELECT CURRENT_TIMESTAMP"),
    "sqlite": sa.text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"),
}


def database_now(db) -> datetime:
    """The database's current time, timezone-aware UTC: one statement on its own."""
    with db.single_statement() as connection:
        value = connection.execute(_NOW.get(db.dialect, _NOW["postgresql"])).scalar_one()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def database_clock(db) -> Callable[[], datetime]:
    """A clock that reads the database's time once and runs on from it by this process's monotonic
    clock: a worker's later readings (a drainer's) without a round trip each."""
    start, started = database_now(db), time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - started)
