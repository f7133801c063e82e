"""The one place the wall clock is read, at the web edge. Everything below the edge takes `now` as an
argument. Workers and beat sweeps read the database's clock instead (app/platform/db/clock.py): a host's own
clock may be minutes off, and due times, claims and leases are compared with the database's rows."""

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC, so say so."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
