"""What the reports count of tasks: the follow-up report's counts of the tasks due in a range, by
clinic and UTC month of the due time, and the coordinators' open and overdue tasks.

What a task due in a range counts as (`counts`): due; completed; completed on time (at or before
its due time); cancelled; still open; completed by each outcome. Over the whole clinic, the range's
whole months come from `analytics_task_months` (`summed`), the partial months at its ends from the
tasks' index (`between`).

That table holds changes, not totals: a month's counts are the sums of its rows. The database's
triggers on lead_tasks (migration 0070) add a row for every write that changes what a task counts
as, whoever writes it (a use case, the overdue sweep, erasure, a bulk cancel, a delete), in the
writer's own transaction: a count is never ahead of or behind the tasks. Writers only insert, so
they never wait on each other for a month's row; `fold`, a sweep, replaces a month's rows with one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

import sqlalchemy as sa

from app.domains.analytics import queries
from app.domains.analytics.figures import Cohort, of_leads
from app.domains.analytics.models import TaskMonth
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask, TaskOutcome, TaskStatus
from app.platform.db import UnitOfWork

OUTCOMES = tuple(outcome.value for outcome in TaskOutcome)
COUNTS = ("due", "completed", "on_time", "cancelled", "still_open", *OUTCOMES)
_TABLE = TaskMonth.__table__


def counts(task=LeadTask) -> list:
    """SQL aggregates, in COUNTS' order, over the tasks of a statement (the trigger of migration 0070
    counts the same, per task; a test compares the two)."""

    def where(condition):
        return sa.func.count(sa.case((condition, 1)))

    completed = task.status == TaskStatus.COMPLETED
    return [
        sa.func.count(),
        where(completed),
        where(sa.and_(completed, task.completed_at <= task.due_at)),
        where(task.status == TaskStatus.CANCELLED),
        where(task.status.in_(OPEN_TASK_STATUSES)),
        *(where(task.outcome == outcome) for outcome in TaskOutcome),
    ]


def summed(clinic_id: int, first: date, stop: date) -> sa.Select:
    """SQL: one row, the counts of the clinic's tasks due in the months [first, stop)."""
    return sa.select(*(sa.func.coalesce(sa.func.sum(_TABLE.c[name]), 0) for name in COUNTS)).where(
        _TABLE.c.clinic_id == clinic_id, _TABLE.c.month >= first, _TABLE.c.month < stop
    )


def between(cohort: Cohort, start: datetime, end: datetime) -> sa.Select:
    """SQL: one row, the counts of the cohort's tasks due in [start, end), from the tasks' index."""
    stmt = sa.select(*counts()).where(
        LeadTask.clinic_id == cohort.clinic_id, LeadTask.due_at >= start, LeadTask.due_at < end
    )
    if cohort.coordinator_id is not None:  # the task's assignee, not the lead's owner
        stmt = stmt.where(LeadTask.assigned_to_id == cohort.coordinator_id)
    return of_leads(stmt, LeadTask.lead_id, source_id=cohort.source_id)


def open_by_owner(cohort: Cohort, now: datetime) -> sa.Select:
    """SQL: per assignee, the open tasks and those overdue (due before `now`), of the clinic's tasks
    (narrowed to the cohort's owner and source; whatever their due time)."""
    stmt = sa.select(
        LeadTask.assigned_to_id,
        sa.func.count(),
        sa.func.count(sa.case((LeadTask.due_at < now, 1))),
    ).where(LeadTask.clinic_id == cohort.clinic_id, LeadTask.status.in_(OPEN_TASK_STATUSES))
    if cohort.coordinator_id is not None:
        stmt = stmt.where(LeadTask.assigned_to_id == cohort.coordinator_id)
    return of_leads(stmt, LeadTask.lead_id, source_id=cohort.source_id).group_by(LeadTask.assigned_to_id)


def fold(session: UnitOfWork) -> int:
    """Each month with more than one row gets one, their sums (none if all are zero); returns the rows
    folded. The rows are taken by a DELETE, so two folds at once never fold a row twice, and a row a
    writer adds meanwhile is left for the next."""
    several = (
        sa.select(_TABLE.c.clinic_id, _TABLE.c.month)
        .group_by(_TABLE.c.clinic_id, _TABLE.c.month)
        .having(sa.func.count() > 1)
    )
    taken = session.execute(
        _TABLE.delete()
        .where(sa.tuple_(_TABLE.c.clinic_id, _TABLE.c.month).in_(several))
        .returning(_TABLE.c.clinic_id, _TABLE.c.month, *(_TABLE.c[name] for name in COUNTS))
    ).all()
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(COUNTS))
    for clinic_id, month, *changes in taken:
        sums[(clinic_id, month)] = [a + b for a, b in zip(sums[(clinic_id, month)], changes, strict=True)]
    folded = [
        {"clinic_id": clinic_id, "month": month, **dict(zip(COUNTS, totals, strict=True))}
        for (clinic_id, month), totals in sorted(sums.items())
        if any(totals)
    ]
    if folded:
        session.execute(_TABLE.insert(), folded)
    return len(taken)


def kept(connection: sa.Connection) -> dict:
    """{(clinic id, month): counts} as the table sums them, months counting nothing left out."""
    rows = connection.execute(
        sa.select(
            _TABLE.c.clinic_id, _TABLE.c.month, *(sa.func.sum(_TABLE.c[name]) for name in COUNTS)
        ).group_by(_TABLE.c.clinic_id, _TABLE.c.month)
    )
    return {(clinic_id, month): tuple(found) for clinic_id, month, *found in rows if any(found)}


def recomputed(connection: sa.Connection) -> dict:
    """{(clinic id, month): counts} counted from the tasks themselves (tests compare it with `kept`)."""
    month = queries.utc_month(connection, LeadTask.due_at)
    rows = connection.execute(
        sa.select(LeadTask.clinic_id, month, *counts()).group_by(LeadTask.clinic_id, month)
    )
    return {(clinic_id, _as_date(found_month)): tuple(found) for clinic_id, found_month, *found in rows}


def _as_date(month) -> date:
    return month if isinstance(month, date) else date.fromisoformat(month)
