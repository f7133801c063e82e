"""The analytics SQL that differs by dialect (PostgreSQL, SQLite), in one place.

Timestamps are stored as UTC (timestamptz on PostgreSQL, naive UTC text on SQLite).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from statistics import median

import sqlalchemy as sa

from app.domains.analytics.models import CountedLead, LeadMonth
from app.platform.db import UnitOfWork, add_to_rows, begin_report_reads, insert_absent, read_report, spans

WEEK_SECONDS = 7 * 86400
SPEED_TO_LEAD_SECONDS = 300  # "contacted within 5 minutes": at most this many seconds, rounded


def _backend(bind) -> str:
    """The database's name for a Session, a Connection or a dialect name (SQL differs by it)."""
    if isinstance(bind, str):
        return bind
    if hasattr(bind, "get_bind"):  # a session
        bind = bind.get_bind()
    return bind.dialect.name


def is_postgresql(bind) -> bool:
    return _backend(bind) == "postgresql"


def seconds_between(bind, later, earlier):
    """SQL: seconds from `earlier` to `later` (SQLite keeps datetimes as text): the platform's one
    definition (app/platform/db/spans.py), which the spans kept on the lead are written with.
    `bind` (a Session or Connection) is no longer needed: the SQL is rendered for its database."""
    return spans.seconds_between(later, earlier)


def utc_month(bind, at):
    """SQL: the first day (a date) of the UTC month of the timestamp `at`."""
    if is_postgresql(bind):
        return sa.cast(sa.func.date_trunc("month", sa.func.timezone("UTC", at)), sa.Date)
    return sa.type_coerce(sa.func.date(at, "start of month"), sa.Date)


def reply_bucket(bind, replied, seconds):
    """SQL: the bucket of a message's seconds to its reply (-1: not replied): a minute each in the
    first hour (0-59), then an hour each (60: 1 h to 2 h, ...). The message months count messages by
    it (migration 0071's triggers, a frozen copy: a test compares the two), so a group's median is in
    the bucket the counts say, and only that bucket's messages need reading (`bucket_start`)."""
    minutes = _whole(bind, seconds / 60.0)
    hours = _whole(bind, (seconds - 3600) / 3600.0)
    return sa.case(
        (sa.or_(sa.not_(replied), seconds.is_(None)), -1), (seconds < 3600, minutes), else_=60 + hours
    )


def bucket_start(bucket: int) -> float:
    """The fewest seconds to a reply in `bucket` (reply_bucket): every value below it is in an
    earlier bucket."""
    return 60.0 * bucket if bucket < 60 else 3600.0 * (bucket - 59)


def _whole(bind, value):
    """SQL: the whole part of a value >= 0 (PostgreSQL's cast to an integer rounds; SQLite's
    truncates)."""
    if is_postgresql(bind):
        return sa.cast(sa.func.floor(value), sa.Integer)
    return sa.cast(value, sa.Integer)


def week_index(bind, at, start: datetime):
    """SQL: the number of whole weeks from `start` to `at` (at >= start): 0 for the first 7 days."""
    weeks = seconds_between(bind, at, sa.literal(start, type_=at.type)) / WEEK_SECONDS
    if is_postgresql(bind):
        return sa.cast(sa.func.floor(weeks), sa.Integer)  # a cast alone rounds (1.7 -> 2)
    return sa.cast(weeks, sa.Integer)  # SQLite's cast truncates, which is the floor of a value >= 0


def later_of(bind, a, b):
    """SQL: the later of two timestamps; null when either is (app/platform/db/spans.py)."""
    return spans.later_of(a, b)


def medians_by(session: UnitOfWork, groups: dict, values: dict, conditions: list) -> dict[str, dict]:
    """For each group column of `groups` (name: column), each of its values' (rows, median of each of
    `values`) over the leads of `conditions`, unrounded, nulls skipped: {name: {value: (rows, ...)}}.
    PostgreSQL: one grouped statement per group column, percentile_cont per group; elsewhere the
    rows, in Python."""
    columns, medians = list(groups.values()), list(values.values())
    found: dict[str, dict] = {name: {} for name in groups}
    if is_postgresql(session):
        # A statement per group column, not one pass with GROUPING SETS: each can read the range's
        # leads already in its group's order from an index covering the values (speed to lead's
        # split: the leads' (clinic, owner | source, created_at) indexes, migration 0066), where the
        # single pass sorted every lead of the range by one group, then again by the other: over
        # two years most of the split's time (docs/performance-history.md, "Reports over two years"). A
        # short range still reads the cohort's index and sorts its few leads: the planner weighs both.
        # The statements run at once on connections of their own, in one snapshot (read_report).
        statements = [
            sa.select(
                column,
                sa.func.count(),
                *[sa.func.percentile_cont(0.5).within_group(value) for value in medians],
            )
            .where(*conditions)
            .group_by(column)
            for column in groups.values()
        ]
        for name, rows in zip(groups, read_report(session, statements), strict=True):
            found[name] = {row[0]: tuple(row[1:]) for row in rows}
        return found
    rows = session.execute(sa.select(*columns, *medians).where(*conditions)).all()
    for index, name in enumerate(groups):
        by_value: dict = {}
        for row in rows:
            by_value.setdefault(row[index], []).append(row[len(columns) :])
        for value, of_value in by_value.items():
            spans = [[r[i] for r in of_value if r[i] is not None] for i in range(len(medians))]
            found[name][value] = (len(of_value), *[median(s) if s else None for s in spans])
    return found


def percentile_rows(session: UnitOfWork, source, value_col, group_col=None) -> list[tuple]:
    """(group, median, p90) of `value_col` over the rows of `source` (nulls skipped), unrounded."""
    return list(session.execute(percentile_select(session, source, value_col, group_col)))


def percentile_select(session: UnitOfWork, source, value_col, group_col=None) -> sa.Select:
    """SQL: `percentile_rows`' statement (to read with others at once).

    Median: the mean of the middle one or two values. p90: nearest rank, the ceil(0.9 n)-th value.
    PostgreSQL has them as ordered-set aggregates (percentile_cont, percentile_disc: one sort per
    group, no window pass); elsewhere row numbers pick them.
    """
    group = group_col if group_col is not None else sa.literal(0)
    if is_postgresql(session):
        return (
            sa.select(
                group,
                sa.func.percentile_cont(0.5).within_group(value_col),
                sa.func.percentile_disc(0.9).within_group(value_col),
            )
            .select_from(source)
            .where(value_col.is_not(None))
            .group_by(group)
        )
    ranked = sa.select(
        group.label("g"),
        value_col.label("v"),
        sa.func.row_number().over(partition_by=group, order_by=value_col).label("rn"),
        sa.func.count().over(partition_by=group).label("n"),
    ).select_from(source)
    ranked = ranked.where(value_col.is_not(None)).subquery()  # as PostgreSQL's: nulls are no values
    rn, n, v = ranked.c.rn, ranked.c.n, ranked.c.v
    return sa.select(
        ranked.c.g,
        sa.func.avg(sa.case((rn.in_([(n + 1) // 2, (n + 2) // 2]), v))),
        sa.func.max(sa.case((rn == (9 * n + 9) // 10, v))),
    ).group_by(ranked.c.g)


def speed_to_lead_row(session: UnitOfWork, seconds, cohort: list) -> tuple:
    """(leads, contacted, contacted within SPEED_TO_LEAD_SECONDS, median and p90 minutes, unrounded)
    over the cohort's leads, `seconds` to the first contact (null: uncontacted)."""
    return begin_speed_to_lead_row(session, seconds, cohort, count_leads=True)(None)


def begin_speed_to_lead_row(
    session: UnitOfWork, seconds, cohort: list, *, count_leads: bool
) -> Callable[[int | None], tuple]:
    """`speed_to_lead_row`'s reads begun (PostgreSQL: at once, while the caller reads more), and the
    function that gives the row once they are done. `count_leads` False: the caller gives the
    cohort's count to that function (speed to lead's split counts every lead)."""
    within = sa.func.count(sa.case((sa.func.round(seconds) <= SPEED_TO_LEAD_SECONDS, 1)))
    minutes, contacted = seconds / 60.0, [*cohort, seconds.is_not(None)]
    counted = [sa.select(sa.func.count()).where(*cohort)] if count_leads else []
    if is_postgresql(session):
        # The contacted leads only: over a long range they are read in order of `seconds` from a
        # partial index (ix_leads_speed_to_lead), so the percentiles' sort finds them sorted. Read in
        # the unit's snapshot, as the split's reads that count the cohort meanwhile.
        figures = sa.select(
            sa.func.count(),
            within,
            sa.func.percentile_cont(0.5).within_group(minutes),
            sa.func.percentile_disc(0.9).within_group(minutes),
        ).where(*contacted)
        reads = begin_report_reads(session, [figures, *counted])

        def row(leads: int | None) -> tuple:
            [[found], *count] = reads.rows()
            return (count[0][0][0] if count_leads else leads, *found)

        return row
    leads = session.execute(counted[0]).scalar_one() if count_leads else None
    reached = session.execute(sa.select(sa.func.count(), within).where(*contacted)).one()
    contacted_only = sa.select(minutes.label("minutes")).where(*contacted).subquery()
    rows = percentile_rows(session, contacted_only, contacted_only.c.minutes)
    median, p90 = (rows[0][1], rows[0][2]) if rows else (None, None)
    return lambda given: (leads if count_leads else given, *reached, median, p90)


def add_to_months(session: UnitOfWork, rows: list[dict], table: sa.Table = LeadMonth.__table__) -> None:
    """Add each row's counts to its month row of `table` (the lead months, or the message months;
    created at 0 if missing), in the rows' order."""
    add_to_rows(session, table, rows)


def insert_counted_if_absent(session: UnitOfWork, rows: list[dict]) -> set[int]:
    """Insert the `CountedLead` rows whose lead has none yet; the lead ids inserted (a concurrent
    insert of the same lead waits for the other transaction and then leaves the row to it)."""
    return insert_absent(session, CountedLead.__table__, rows, unique="lead_id")
