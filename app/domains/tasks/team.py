"""Team task views for managers: the clinic's tasks filtered, sorted and paged, and their summary.

Read-only: what a dashboard or a Kanban board needs. Due buckets (overdue, today, this week,
later) are counted in the clinic's local time and only over open tasks: a closed task is due
nowhere.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.auth.models import Clinic, User
from app.domains.tasks import rules
from app.domains.tasks.models import OPEN_TASK_STATUSES, PRIORITY_RANK, LeadTask, TaskStatus
from app.platform.db import PageRequest, UnitOfWork, among, page_of
from app.platform.roles import Actor

DUE_BUCKETS = ("overdue", "today", "this_week", "later")
_PRIORITY_RANK = sa.case(
    *[(LeadTask.priority == priority.value, rank) for priority, rank in PRIORITY_RANK.items()], else_=9
)
SORTS = {
    "due_at": LeadTask.due_at,
    "priority": _PRIORITY_RANK,
    "created_at": LeadTask.created_at,
    "updated_at": LeadTask.updated_at,
    "status": LeadTask.status,
    "assigned_to_id": LeadTask.assigned_to_id,
}
SORT_CHOICES = [key for name in SORTS for key in (name, f"-{name}")]


def conditions(*, clinic_id: int, filters: dict, now: datetime) -> list:
    """WHERE clauses of the team filters (assignee, status, type, priority, lead, due range, overdue)."""
    where = [LeadTask.clinic_id == clinic_id]
    for name, column in (
        ("assigned_to_id", LeadTask.assigned_to_id),
        ("status", LeadTask.status),
        ("type", LeadTask.type),
        ("priority", LeadTask.priority),
    ):
        if filters.get(name):
            where.append(column.in_(filters[name]))
    if filters.get("lead_id"):
        where.append(LeadTask.lead_id == filters["lead_id"])
    if filters.get("due_from"):
        where.append(LeadTask.due_at >= filters["due_from"])
    if filters.get("due_to"):
        where.append(LeadTask.due_at < filters["due_to"])
    if filters.get("overdue") is True:
        where += [LeadTask.status.in_(OPEN_TASK_STATUSES), LeadTask.due_at < now]
    elif filters.get("overdue") is False:
        where.append(sa.or_(LeadTask.status.notin_(OPEN_TASK_STATUSES), LeadTask.due_at >= now))
    return where


def order_by(sort: str) -> list:
    column = SORTS[sort.lstrip("-")]
    first = column.desc() if sort.startswith("-") else column.asc()
    # A stable order for paging: ties fall back to due time, then id.
    return [first, LeadTask.due_at, LeadTask.id]


def team_tasks(
    *, session: UnitOfWork, actor: Actor, filters: dict, sort: str, now: datetime, paging: PageRequest
) -> tuple[list[LeadTask], int]:
    """The clinic's tasks matching `filters`, in `sort` order (a leading "-" is descending), one page."""
    where = conditions(clinic_id=actor.clinic_id, filters=filters, now=now)
    rows, total = page_of(session, LeadTask, where, order_by=order_by(sort), paging=paging)
    return rows, total


def _bucket(now: datetime, end_of_today: datetime, end_of_week: datetime):
    """The due bucket of a row as SQL: null for a closed task."""
    return sa.case(
        (LeadTask.status.notin_(OPEN_TASK_STATUSES), sa.null()),
        (LeadTask.due_at < now, "overdue"),
        (LeadTask.due_at < end_of_today, "today"),
        (LeadTask.due_at < end_of_week, "this_week"),
        else_="later",
    )


def _empty_counts() -> dict:
    return {
        "by_status": {status.value: 0 for status in TaskStatus},
        "by_due": dict.fromkeys(DUE_BUCKETS, 0),
        "open": 0,
        "total": 0,
    }


def _add(counts: dict, status: str, bucket: str | None, n: int) -> None:
    counts["by_status"][status] = counts["by_status"].get(status, 0) + n
    counts["total"] += n
    if bucket is not None:
        counts["by_due"][bucket] += n
        counts["open"] += n


def summary(*, session: UnitOfWork, actor: Actor, filters: dict, now: datetime) -> dict:
    """Counts by status and by due bucket, per assignee and in total, of the tasks matching `filters`."""
    clinic = session.get(Clinic, actor.clinic_id)
    end_of_today, end_of_week = rules.due_bucket_bounds(now, clinic.timezone)
    bucket = _bucket(now, end_of_today, end_of_week).label("bucket")
    rows = session.execute(
        sa.select(LeadTask.assigned_to_id, LeadTask.status, bucket, sa.func.count())
        .where(*conditions(clinic_id=actor.clinic_id, filters=filters, now=now))
        .group_by(LeadTask.assigned_to_id, LeadTask.status, bucket)
    ).all()
    totals, per_user = _empty_counts(), {}
    for user_id, status, due_bucket, n in rows:
        _add(totals, status, due_bucket, n)
        _add(per_user.setdefault(user_id, _empty_counts()), status, due_bucket, n)
    names = dict(session.execute(sa.select(User.id, User.name).where(User.id.in_(list(per_user)))).all())
    return {
        "as_of": now,
        "timezone": clinic.timezone,
        "today_ends_at": end_of_today,
        "week_ends_at": end_of_week,
        "totals": totals,
        "assignees": [
            {"assigned_to_id": user_id, "name": names.get(user_id), **counts}
            for user_id, counts in sorted(per_user.items())
        ],
    }


def next_tasks(*, session: UnitOfWork, clinic_id: int, lead_ids: list[int]) -> dict[int, LeadTask]:
    """Each lead's next step: its open task due first (a lead without one is absent), for a page of
    leads in two queries (the titles decrypted only for the tasks shown)."""
    if not lead_ids:
        return {}
    first: dict[int, int] = {}
    for lead_id, task_id in session.execute(
        sa.select(LeadTask.lead_id, LeadTask.id)
        .where(
            LeadTask.clinic_id == clinic_id,
            among(session, LeadTask.lead_id, lead_ids),
            LeadTask.status.in_(OPEN_TASK_STATUSES),
        )
        .order_by(LeadTask.lead_id, LeadTask.due_at, LeadTask.id)
    ):
        first.setdefault(lead_id, task_id)
    if not first:
        return {}
    tasks = session.scalars(sa.select(LeadTask).where(among(session, LeadTask.id, first.values())))
    return {task.lead_id: task for task in tasks}
