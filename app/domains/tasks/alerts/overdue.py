"""Overdue tasks: the sweep that marks them (task.overdue, once per task) and the assignee told at once
(the escalation when one stays overdue with no contact: app/domains/tasks/escalation.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.outbound import service as notifications
from app.domains.tasks import rules
from app.domains.tasks.events import TaskOverdue
from app.domains.tasks.models import LeadTask, TaskStatus
from app.platform.db import UnitOfWork
from app.platform.events import service as events
from app.platform.events.types import Delivered


def mark_overdue(*, session: UnitOfWork, now: datetime, limit: int | None = None) -> int:
    """Open tasks past due become OVERDUE (one conditional UPDATE: overlapping sweeps agree); with a
    `limit`, that many at most, taken in turns across clinics (each clinic's oldest first, then each
    one's second...), so that a clinic with a backlog does not keep the others waiting.

    Each task it marks emits task.overdue (integrators' webhooks); a concurrent sweep's UPDATE finds
    the rows no longer open, so every task is announced once.
    """
    is_due = (LeadTask.status.in_((TaskStatus.PENDING, TaskStatus.IN_PROGRESS)), LeadTask.due_at < now)
    statement = sa.update(LeadTask).where(*is_due)
    if limit is not None:
        statement = statement.where(LeadTask.id.in_(_in_turns(is_due, limit)))
    marked = session.execute(
        statement.values(status=TaskStatus.OVERDUE, updated_at=now)
        .returning(
            LeadTask.id, LeadTask.clinic_id, LeadTask.lead_id, LeadTask.assigned_to_id, LeadTask.due_at
        )
        .execution_options(synchronize_session=False)
    ).all()
    for task in marked:
        events.emit(
            session=session,
            event=TaskOverdue(
                task_id=task.id,
                lead_id=task.lead_id,
                assigned_to_id=task.assigned_to_id,
                due_at=task.due_at.isoformat(),
            ),
            subject=events.Subject(task.clinic_id, "task", task.id),
            now=now,
        )
    return len(marked)


def _in_turns(is_due, limit: int) -> sa.Select:
    """The ids of up to `limit` due tasks, round-robin by clinic (its n-th oldest is its n-th turn)."""
    turn = sa.func.row_number().over(partition_by=LeadTask.clinic_id, order_by=(LeadTask.due_at, LeadTask.id))
    ranked = sa.select(LeadTask.id, LeadTask.due_at, turn.label("turn")).where(*is_due).subquery()
    return sa.select(ranked.c.id).order_by(ranked.c.turn, ranked.c.due_at, ranked.c.id).limit(limit)


def mark_overdue_in_chunks(*, db, now: datetime, chunk: int) -> int:
    """`mark_overdue` in transactions of `chunk` tasks at most (each one processing job of `chunk`
    events at most), until none is left; returns how many it marked."""
    marked = 0
    while True:
        with db.unit_of_work() as session:
            count = mark_overdue(session=session, now=now, limit=chunk)
        marked += count
        if count < chunk:
            return marked


def tell_overdue(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """task.overdue consumer: the assignee is told at once (in-app, and by email unless turned off)."""
    task = session.get(LeadTask, event.data.task_id)
    if task is None or task.status != TaskStatus.OVERDUE or task.assigned_to_id is None:
        return  # done, snoozed or cancelled since the sweep marked it
    notifications.notify_staff(
        session=session,
        clinic_id=task.clinic_id,
        user_id=task.assigned_to_id,
        notice=notifications.StaffNotice(
            kind="overdue",
            title=f"Overdue: {task.title}",
            body=f"Task {task.id} was due {task.due_at.isoformat()}",
            link=f"/api/leads/tasks/{task.id}",
            dedupe_key=f"task:{task.id}:overdue:{task.due_at.isoformat()}",
            about={"task": rules.task_summary(task)},
        ),
        now=now,
    )
