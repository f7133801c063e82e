"""Monthly counts kept as rows of changes: the tasks' (analytics_task_months, migration 0070) and the
automated messages' (analytics_message_months, migration 0071).

The database's triggers add a row for every write that changes what a task or a counted message
counts as, whoever writes it and in the writer's transaction, so a count is never ahead of or behind
the rows it counts, whatever the writer (a use case, a sweep, erasure, a bulk edit, a release still
running the previous code during a deploy). A month's counts are the sums of its rows. Writers
only insert, so none waits on another for a month's row; `fold`, a sweep, replaces the rows of a
month (and group) with one.

A report reads a range's whole months from these (`by_months`), its partial months at either end
from the rows themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import sqlalchemy as sa

from app.domains.analytics import monthly, task_counts
from app.domains.analytics.figures import Cohort
from app.domains.analytics.models import MessageMonth, TaskMonth
from app.platform.db import UnitOfWork

# Each table: (its key columns besides clinic and month, its counts).
TABLES = {
    TaskMonth.__table__: ((), task_counts.COUNTS),
    MessageMonth.__table__: (("channel", "sequence_id", "reply_bucket"), ("messages", "replied")),
}


def by_months(cohort: Cohort, summed: Callable, between: Callable) -> list[sa.Select]:
    """SQL: statements whose rows, summed, are the cohort's range's counts. Over the whole clinic,
    the range's whole months from the monthly counts (`summed(clinic_id, first month, stop month)`:
    over two years 24 months instead of ~100,000 tasks or ~290,000 messages), its partial months at
    either end from the rows (`between(cohort, start, end)`); narrowed to an owner or a source (the
    months are the clinic's), every row of the range."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    narrowed = coordinator_id is not None or source_id is not None
    months = None if narrowed else monthly.full_months(start, end)
    if months is None:
        return [between(cohort, start, end)]
    ends = [(start, monthly.month_start(months[0])), (monthly.month_start(months[1]), end)]
    return [summed(clinic_id, *months), *(between(cohort, a, b) for a, b in ends if a < b)]


def fold(session: UnitOfWork) -> int:
    """In each table, every (clinic, month, group) with more than one row gets one, their sums (none
    if all are zero); returns the rows folded. The rows are taken by a DELETE, so two folds at once
    never fold a row twice, and a row a writer adds meanwhile is left for the next."""
    return sum(
        _fold(session, table, (table.c.clinic_id, table.c.month, *keys), counts)
        for table, (keys, counts) in _columns().items()
    )


def kept(connection: sa.Connection, table: sa.Table) -> dict:
    """{(clinic id, month, *group): counts} as `table` sums them, groups counting nothing left out."""
    keys, counts = _columns()[table]
    key = (table.c.clinic_id, table.c.month, *keys)
    rows = connection.execute(sa.select(*key, *(sa.func.sum(c) for c in counts)).group_by(*key))
    return {tuple(row[: len(key)]): tuple(row[len(key) :]) for row in rows if any(row[len(key) :])}


def _columns() -> dict:
    return {
        table: ([table.c[name] for name in keys], [table.c[name] for name in counts])
        for table, (keys, counts) in TABLES.items()
    }


def _fold(session: UnitOfWork, table: sa.Table, key: tuple, counts: list) -> int:
    several = sa.select(*key).group_by(*key).having(sa.func.count() > 1)
    taken = session.execute(table.delete().where(sa.tuple_(*key).in_(several)).returning(*key, *counts)).all()
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(counts))
    for row in taken:
        group, changes = tuple(row[: len(key)]), row[len(key) :]
        sums[group] = [a + b for a, b in zip(sums[group], changes, strict=True)]
    folded = [
        {c.name: value for c, value in zip((*key, *counts), (*group, *totals), strict=True)}
        for group, totals in sorted(sums.items())
        if any(totals)
    ]
    if folded:
        session.execute(table.insert(), folded)
    return len(taken)
