"""The analytics SQL that differs by dialect (PostgreSQL, SQLite), in one place.

Timestamps are stored as UTC (timestamptz on PostgreSQL, naive UTC text on SQLite).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.analytics.rollups import seconds_between

WEEK_SECONDS = 7 * 86400


def utc_month(dialect: str, at):
    """SQL: the first day (a date) of the UTC month of the timestamp `at`."""
    if dialect == "postgresql":
        return sa.cast(sa.func.date_trunc("month", sa.func.timezone("UTC", at)), sa.Date)
    return sa.type_coerce(sa.func.date(at, "start of month"), sa.Date)


def week_index(dialect: str, at, start: datetime):
    """SQL: the number of whole weeks from `start` to `at` (at >= start): 0 for the first 7 days."""
    weeks = seconds_between(dialect, at, sa.literal(start, type_=at.type)) / WEEK_SECONDS
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(weeks), sa.Integer)  # a cast alone rounds (1.7 -> 2)
    return sa.cast(weeks, sa.Integer)  # SQLite's cast truncates, which is the floor of a value >= 0
