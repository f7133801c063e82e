"""What the reports count of tasks: the follow-up report's counts of the tasks due in a range, by
clinic and UTC month of the due time, and the coordinators' open and overdue tasks.

What a task due in a range counts as (`counts`): due; completed; completed on time (at or before
its due time); cancelled; still open; completed by each outcome. Over the whole clinic, the range's
whole months come from `analytics_task_months` (`summed`), the partial months at its ends from the
tasks' index (`between`).

That table holds rows of changes that the database's triggers on lead_tasks add (migration 0070)
for every write that changes what a task counts as, whoever writes it (a use case, the overdue
sweep, erasure, a bulk cancel, a delete): app/domains/analytics/month_changes.py.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from app.domains.analytics import queries
from app.domains.analytics.figures import Cohort, of_leads
from app.domains.analytics.models import TaskMonth
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask, TaskOutcome, TaskStatus

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


def recomputed(connection: sa.Connection) -> dict:
    """{(clinic id, month): counts} counted from the tasks themselves (tests compare it with what the
    task months keep, month_changes.kept)."""
    month = queries.utc_month(connection, LeadTask.due_at)
    rows = connection.execute(
        sa.select(LeadTask.clinic_id, month, *counts()).group_by(LeadTask.clinic_id, month)
    )
    return {(clinic_id, month): tuple(found) for clinic_id, month, *found in rows}
