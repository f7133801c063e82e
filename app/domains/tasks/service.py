"""Use cases of follow-up tasks: read them (a lead's, mine, overdue), and change an open one:
update, snooze, complete, cancel; a closed lead's open tasks are cancelled.

Tasks sit above activities and leads (automation → tasks → activities → leads → auth).
Making tasks is creation.py; their timers (reminders, escalation) alerts/timers.py; overdue tasks
alerts/overdue.py (and their digest alerts/digest.py); escalation (of a lead nobody reached, of an
overdue task) escalation.py; task templates templates.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityType
from app.domains.auth.models import Clinic
from app.domains.leads import service as leads
from app.domains.leads.models import OPEN_STATUSES, Lead
from app.domains.tasks import claims, rules
from app.domains.tasks.alerts.timers import cancel_timers, replace_timers
from app.domains.tasks.creation import MadeBy, add_task, assignee_for, notify_new_task
from app.domains.tasks.models import (
    CLOSED_TASK_STATUSES,
    OPEN_TASK_STATUSES,
    PRIORITY_RANK,
    LeadTask,
    TaskOutcome,
    TaskStatus,
)
from app.platform.audit import service as audit
from app.platform.db import PageRequest, UnitOfWork, page_of
from app.platform.errors import InvalidTransition, NotFound, ValidationFailed
from app.platform.events.types import Delivered
from app.platform.roles import Actor, Role


def get_task(*, session: UnitOfWork, clinic_id: int, task_id: int, for_update: bool = False) -> LeadTask:
    """A task of the clinic (another clinic's task is not found)."""
    stmt = sa.select(LeadTask).where(LeadTask.id == task_id, LeadTask.clinic_id == clinic_id)
    if for_update:
        stmt = stmt.with_for_update()
    task = session.scalar(stmt)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


def _priority_order():
    return sa.case(*[(LeadTask.priority == p.value, rank) for p, rank in PRIORITY_RANK.items()], else_=9)


def _page(
    session: UnitOfWork, conditions: list, paging: PageRequest, options: tuple = ()
) -> tuple[list[LeadTask], int]:
    rows, total = page_of(
        session,
        LeadTask,
        conditions,
        order_by=(LeadTask.due_at, _priority_order(), LeadTask.id),
        paging=paging,
        options=options,
    )
    return rows, total


def list_lead_tasks(
    *, session: UnitOfWork, actor: Actor, lead_id: int, status: str | None, paging: PageRequest
) -> tuple[list[LeadTask], int]:
    """A lead's tasks by due time, then priority."""
    leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    conditions = [LeadTask.clinic_id == actor.clinic_id, LeadTask.lead_id == lead_id]
    if status:
        conditions.append(LeadTask.status == status)
    return _page(session, conditions, paging)


@dataclass(frozen=True)
class MyTasksFilter:
    """Which of the caller's tasks to list: of one status (the open ones if None), due within
    [`due_from`, `due_to`), only the overdue ones."""

    status: str | None = None
    due_from: datetime | None = None
    due_to: datetime | None = None
    overdue_only: bool = False


def my_tasks(
    *, session: UnitOfWork, actor: Actor, filters: MyTasksFilter, now: datetime, paging: PageRequest
) -> tuple[list[LeadTask], int]:
    """The caller's tasks (open ones unless a status is asked for), by due time then priority."""
    status, due_from, due_to = filters.status, filters.due_from, filters.due_to
    conditions = [LeadTask.clinic_id == actor.clinic_id, LeadTask.assigned_to_id == actor.user_id]
    conditions.append(LeadTask.status == status if status else LeadTask.status.in_(OPEN_TASK_STATUSES))
    if due_from:
        conditions.append(LeadTask.due_at >= due_from)
    if due_to:
        conditions.append(LeadTask.due_at < due_to)
    if filters.overdue_only:
        conditions += [LeadTask.status.in_(OPEN_TASK_STATUSES), LeadTask.due_at < now]
    # With each task, its lead's next best action (one more query for the page, not one per task).
    with_action = selectinload(LeadTask.lead).load_only(Lead.next_action)
    return _page(session, conditions, paging, options=(with_action,))


def overdue_tasks(*, session: UnitOfWork, actor: Actor, now: datetime, paging: PageRequest):
    """Open tasks past due: the whole clinic's for a clinic_admin, one's own for everybody else."""
    conditions = [
        LeadTask.clinic_id == actor.clinic_id,
        LeadTask.status.in_(OPEN_TASK_STATUSES),
        LeadTask.due_at < now,
    ]
    if actor.role != Role.CLINIC_ADMIN:
        conditions.append(LeadTask.assigned_to_id == actor.user_id)
    return _page(session, conditions, paging)


def _open_task(session: UnitOfWork, actor: Actor, task_id: int) -> tuple[LeadTask, Lead]:
    task = get_task(session=session, clinic_id=actor.clinic_id, task_id=task_id, for_update=True)
    if task.status in CLOSED_TASK_STATUSES:
        raise InvalidTransition(f"task {task_id} is already {task.status.lower()}", code="task_closed")
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=task.lead_id)
    return task, lead


def update_task(*, session: UnitOfWork, actor: Actor, task_id: int, changes: dict, now: datetime) -> LeadTask:
    """Change an open task; a new due time or assignee replaces its reminders."""
    task, lead = _open_task(session, actor, task_id)
    before = rules.audit_snapshot(task)
    if "assigned_to_id" in changes:
        changes["assigned_to_id"] = assignee_for(session, actor.clinic_id, changes["assigned_to_id"], lead).id
    reassigned = changes.get("assigned_to_id", task.assigned_to_id) != task.assigned_to_id
    moved = "due_at" in changes and changes["due_at"] != task.due_at
    moved = moved or changes.get("reminder_offsets_minutes", task.reminder_offsets_minutes) != (
        task.reminder_offsets_minutes
    )
    for key, value in changes.items():
        setattr(task, key, value)
    if moved and task.status == TaskStatus.OVERDUE and task.due_at > now:
        task.status = TaskStatus.PENDING
    task.updated_at = now
    if moved or reassigned:
        replace_timers(session, task, session.get(Clinic, task.clinic_id), now)
    if reassigned:
        notify_new_task(session, task, lead, actor.user_id, now)
    old, new = audit.changes(before, rules.audit_snapshot(task))
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=task.clinic_id,
            actor=actor.ref,
            action="task.update",
            subject_type="task",
            subject_id=task.id,
            before=old,
            after=new,
            at=now,
        ),
    )
    return task


def snooze_task(
    *,
    session: UnitOfWork,
    actor: Actor,
    task_id: int,
    until: datetime | None,
    minutes: int | None,
    now: datetime,
) -> LeadTask:
    """Defer an open task to a time or by a number of minutes (from now)."""
    due_at = until if until is not None else now + timedelta(minutes=minutes)
    if due_at <= now:
        raise ValidationFailed("until", "snooze to a time in the future")
    task = update_task(session=session, actor=actor, task_id=task_id, changes={"due_at": due_at}, now=now)
    claims.release(task)  # put back: the next-task of anyone may hand it out again when due
    return task


def complete_task(
    *,
    session: UnitOfWork,
    actor: Actor,
    task_id: int,
    notes: str | None,
    now: datetime,
    outcome: str = TaskOutcome.DONE,
) -> LeadTask:
    """Mark a task done with its outcome (TASK_COMPLETED on the lead's timeline); a recurring task
    makes its next one."""
    task, lead = _open_task(session, actor, task_id)
    before = rules.audit_snapshot(task)
    task.status, task.completed_at, task.completed_by = TaskStatus.COMPLETED, now, actor.user_id
    task.outcome, task.outcome_notes, task.updated_at = str(outcome), notes, now
    claims.release(task)
    cancel_timers(session, task, now)
    activities.record(
        session=session,
        lead=lead,
        facts=activities.ActivityFacts(
            type=ActivityType.TASK_COMPLETED,
            at=now,
            actor_ref=actor.ref,
            user_id=actor.user_id,
            notes=notes,
            # Ids and kinds only: activity details are stored in clear, a task's title may name the lead.
            details={"task_id": task.id, "outcome": task.outcome},
        ),
    )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=task.clinic_id,
            actor=actor.ref,
            action="task.complete",
            subject_type="task",
            subject_id=task.id,
            before=before,
            after=rules.audit_snapshot(task),
            at=now,
        ),
    )
    _create_next_occurrence(session, task, lead, actor, now)
    return task


def _create_next_occurrence(
    session: UnitOfWork, task: LeadTask, lead: Lead, actor: Actor, now: datetime
) -> None:
    if not task.recurrence or lead.status not in OPEN_STATUSES:
        return
    timezone = lead.timezone or session.get(Clinic, task.clinic_id).timezone
    fields = rules.next_in_series(task, timezone)
    if fields is None:
        return
    nxt = LeadTask(
        clinic_id=task.clinic_id,
        lead_id=task.lead_id,
        created_by_id=actor.user_id,
        status=TaskStatus.PENDING,
        origin={**task.origin, "recurs_from": task.id},
        template_id=task.template_id,
        recurrence=task.recurrence,
        recurrence_interval=task.recurrence_interval,
        recurrence_until=task.recurrence_until,
        previous_task_id=task.id,
        series_id=task.series_id or task.id,
        revision=1,
        created_at=now,
        updated_at=now,
        **fields,
    )
    # The series' assignee so far knows of it already: only a new assignee is told.
    add_task(session, nxt, lead, MadeBy(actor.ref, task.assigned_to_id), now)


def cancel_task(*, session: UnitOfWork, actor: Actor, task_id: int, now: datetime) -> LeadTask:
    """Cancel an open task and its reminders."""
    task, _lead = _open_task(session, actor, task_id)
    before = rules.audit_snapshot(task)
    task.status, task.updated_at = TaskStatus.CANCELLED, now
    claims.release(task)
    cancel_timers(session, task, now)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=task.clinic_id,
            actor=actor.ref,
            action="task.cancel",
            subject_type="task",
            subject_id=task.id,
            before=before,
            after=rules.audit_snapshot(task),
            at=now,
        ),
    )
    return task


def cancel_open_tasks_of_lead(
    *, session: UnitOfWork, lead_id: int, now: datetime, keep_event_id: int | None = None
) -> int:
    """A converted or lost lead needs no more follow-up: cancel its open tasks and their timers.

    `keep_event_id`: tasks made by that event's automation stay (the close's own kickoff task).
    """
    tasks = [
        task
        for task in session.scalars(
            sa.select(LeadTask).where(LeadTask.lead_id == lead_id, LeadTask.status.in_(OPEN_TASK_STATUSES))
        )
        if keep_event_id is None or (task.origin or {}).get("event_id") != keep_event_id
    ]
    for task in tasks:
        task.status, task.updated_at = TaskStatus.CANCELLED, now
        claims.release(task)
        cancel_timers(session, task, now)
    return len(tasks)


def cancel_open_tasks_of_rules(
    *, session: UnitOfWork, lead_id: int, rule_ids: set[int], since: datetime, now: datetime
) -> int:
    """Cancel the lead's open tasks that these rules' steps made since `since` (a late check-in
    ends the no-show's call task); returns how many."""
    tasks = [
        task
        for task in session.scalars(
            sa.select(LeadTask).where(
                LeadTask.lead_id == lead_id,
                LeadTask.status.in_(OPEN_TASK_STATUSES),
                LeadTask.created_at >= since,
            )
        )
        if (task.origin or {}).get("rule_id") in rule_ids
    ]
    for task in tasks:
        task.status, task.updated_at = TaskStatus.CANCELLED, now
        claims.release(task)
        cancel_timers(session, task, now)
    return len(tasks)


def close_tasks_of_closed_lead(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """Event consumer for lead.converted / lead.lost."""
    cancel_open_tasks_of_lead(session=session, lead_id=event.subject_id, now=now, keep_event_id=event.id)
