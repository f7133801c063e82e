"""The database's clock: the time of record for workers and sweeps, whatever their host's clock says."""

from __future__ import annotations

import time
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


class DatabaseClock:
    """The database's time for one process: read, then run on by this process's monotonic clock,
    and read again once `reread_seconds` have passed. A worker asks it for every job (the time of
    record, whatever its host's clock says): a round trip each cost more than the job's own reads.
    Between reads it can be off by the two clocks' drift only (parts per million)."""

    def __init__(self, db, reread_seconds: float = 1.0):
        self.db, self.reread_seconds = db, reread_seconds
        self._read: tuple[datetime, float] | None = None  # the last reading, and when (monotonic)

    def __call__(self) -> datetime:
        read = self._read
        if read is None or time.monotonic() - read[1] > self.reread_seconds:
            read = self._read = (database_now(self.db), time.monotonic())
        start, started = read
        return start + timedelta(seconds=time.monotonic() - started)
