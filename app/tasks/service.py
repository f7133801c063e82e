"""Use cases of follow-up tasks: create, update, complete, snooze, cancel, list; reminders and escalation.

Tasks sit above activities and leads (DESIGN: automation → tasks → activities → leads → auth). Every
timer of a task (each reminder, the escalation) is a job-ledger row written in the same transaction
as the change that needs it; changing the due time or the assignee bumps `revision` and replaces
them, completing or cancelling cancels them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from app.activities import service as activities
from app.activities.models import ActivityType
from app.audit import service as audit
from app.auth.models import Clinic, User
from app.auth.roles import Actor, Role
from app.db import insert_now, page_offset
from app.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from app.events import service as events
from app.leads import service as leads
from app.leads.models import OPEN_STATUSES, Lead
from app.notifications import staff as notifications
from app.scheduling import batch as ledger_batch
from app.scheduling import service as scheduling
from app.tasks import escalation, queries, rules
from app.tasks.models import (
    CLOSED_TASK_STATUSES,
    OPEN_TASK_STATUSES,
    PRIORITY_RANK,
    LeadTask,
    TaskOutcome,
    TaskPriority,
    TaskStatus,
    TaskTemplate,
)

REMINDER = "task.reminder"
ESCALATION = "task.escalate"
TIMER_KINDS = (REMINDER, ESCALATION)
ASSIGNEE_ROLES = (Role.TREATMENT_COORDINATOR, Role.CLINIC_ADMIN, Role.FRONT_DESK)


# --- reading ---------------------------------------------------------------------------------------


def get_task(*, session: Session, clinic_id: int, task_id: int, for_update: bool = False) -> LeadTask:
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
    session: Session, conditions: list, page: int, page_size: int, options: tuple = ()
) -> tuple[list[LeadTask], int]:
    total = session.scalar(sa.select(sa.func.count()).select_from(LeadTask).where(*conditions))
    rows = session.scalars(
        sa.select(LeadTask)
        .options(*options)
        .where(*conditions)
        .order_by(LeadTask.due_at, _priority_order(), LeadTask.id)
        .limit(page_size)
        .offset(page_offset(page, page_size))
    ).all()
    return list(rows), total


def list_lead_tasks(
    *, session: Session, actor: Actor, lead_id: int, status: str | None, page: int, page_size: int
) -> tuple[list[LeadTask], int]:
    """A lead's tasks by due time, then priority."""
    leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    conditions = [LeadTask.clinic_id == actor.clinic_id, LeadTask.lead_id == lead_id]
    if status:
        conditions.append(LeadTask.status == status)
    return _page(session, conditions, page, page_size)


def my_tasks(
    *,
    session: Session,
    actor: Actor,
    status: str | None,
    due_from: datetime | None,
    due_to: datetime | None,
    overdue_only: bool,
    now: datetime,
    page: int,
    page_size: int,
) -> tuple[list[LeadTask], int]:
    """The caller's tasks (open ones unless a status is asked for), by due time then priority."""
    conditions = [LeadTask.clinic_id == actor.clinic_id, LeadTask.assigned_to_id == actor.user_id]
    conditions.append(LeadTask.status == status if status else LeadTask.status.in_(OPEN_TASK_STATUSES))
    if due_from:
        conditions.append(LeadTask.due_at >= due_from)
    if due_to:
        conditions.append(LeadTask.due_at < due_to)
    if overdue_only:
        conditions += [LeadTask.status.in_(OPEN_TASK_STATUSES), LeadTask.due_at < now]
    # With each task, its lead's next best action (one more query for the page, not one per task).
    with_action = selectinload(LeadTask.lead).load_only(Lead.next_action)
    return _page(session, conditions, page, page_size, options=(with_action,))


def overdue_tasks(*, session: Session, actor: Actor, now: datetime, page: int, page_size: int):
    """Open tasks past due: the whole clinic's for a clinic_admin, one's own for everybody else."""
    conditions = [
        LeadTask.clinic_id == actor.clinic_id,
        LeadTask.status.in_(OPEN_TASK_STATUSES),
        LeadTask.due_at < now,
    ]
    if actor.role != Role.CLINIC_ADMIN:
        conditions.append(LeadTask.assigned_to_id == actor.user_id)
    return _page(session, conditions, page, page_size)


# --- timers (reminders and escalation) ------------------------------------------------------------


def _schedule_timers(session: Session, task: LeadTask, clinic: Clinic, now: datetime) -> None:
    """Reminder jobs before the due time and one escalation job after it, for the task's revision."""
    reminders = rules.reminder_times(task.due_at, _task_offsets(task, clinic), now)
    common = {
        "session": session,
        "now": now,
        "clinic_id": task.clinic_id,
        "subject_type": "task",
        "subject_id": task.id,
    }
    for offset, when in reminders:
        scheduling.schedule(
            kind=REMINDER,
            due_at=when,
            dedupe_key=f"task:{task.id}:r{task.revision}:reminder:{offset}",
            payload={"offset_minutes": offset, "revision": task.revision},
            **common,
        )
    first = reminders[0][1] if reminders else None
    if task.reminder_at != first:
        task.reminder_at = first
    if task.escalated_at is None:
        hours = rules.clinic_escalation_hours(clinic.settings)
        scheduling.schedule(
            kind=ESCALATION,
            due_at=task.due_at + timedelta(hours=hours),
            dedupe_key=f"task:{task.id}:r{task.revision}:escalate",
            payload={"revision": task.revision, "hours": hours},
            **common,
        )


def _replace_timers(session: Session, task: LeadTask, clinic: Clinic, now: datetime) -> None:
    task.revision += 1
    scheduling.cancel(session=session, now=now, subject_type="task", subject_id=task.id, kinds=TIMER_KINDS)
    _schedule_timers(session, task, clinic, now)


def _cancel_timers(session: Session, task: LeadTask, now: datetime) -> None:
    task.reminder_at = None
    scheduling.cancel(session=session, now=now, subject_type="task", subject_id=task.id, kinds=TIMER_KINDS)


# --- writing ---------------------------------------------------------------------------------------

TASK_AUDIT_FIELDS = (
    "title",
    "type",
    "priority",
    "assigned_to_id",
    "due_at",
    "status",
    "escalated_at",
    "outcome",
)


def _snapshot(task: LeadTask) -> dict:
    return {
        k: (v.isoformat() if isinstance(v := getattr(task, k), datetime) else v) for k in TASK_AUDIT_FIELDS
    }


def _open_lead(session: Session, clinic_id: int, lead_id: int) -> Lead:
    lead = leads.get_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
    if lead.status not in OPEN_STATUSES:
        raise Conflict(f"lead {lead_id} is {lead.status.lower()}: it takes no new tasks")
    return lead


def _assignee(
    session: Session, clinic_id: int, user_id: int | None, lead: Lead, field: str = "assigned_to_id"
):
    """The given user (active, of the clinic, a role that works leads), else the lead's coordinator."""
    user_id = user_id or lead.assigned_to_id
    if user_id is None:
        raise ValidationFailed(field, "the lead has no coordinator; name an assignee")
    user = session.get(User, user_id)
    if user is None or user.clinic_id != clinic_id or not user.active or user.role not in ASSIGNEE_ROLES:
        raise ValidationFailed(field, f"user {user_id} is not an active coordinator of this clinic")
    return user


def _notify_new_task(session: Session, task: LeadTask, lead: Lead, actor_user_id: int | None, now: datetime):
    """Someone else gave this person a task: tell them at once."""
    if task.assigned_to_id == actor_user_id:
        return
    notifications.notify_staff(
        session=session,
        clinic_id=task.clinic_id,
        user_id=task.assigned_to_id,
        kind="new_task",
        title=f"New task: {task.title}",
        body=f"{lead.first_name} {lead.last_name}, due {task.due_at.isoformat()}",
        link=f"/api/leads/tasks/{task.id}",
        dedupe_key=f"task:{task.id}:assigned:{task.assigned_to_id}:r{task.revision}",
        now=now,
    )


def _template(session: Session, clinic_id: int, template_id: int) -> TaskTemplate:
    template = session.get(TaskTemplate, template_id)
    if template is None or template.clinic_id != clinic_id or not template.is_active:
        raise ValidationFailed("template_id", f"no active task template {template_id}")
    return template


def _fields_from(session: Session, clinic_id: int, data: dict, now: datetime) -> dict:
    """Task fields from the request, filled in from a template when one is named."""
    fields = dict(data)
    template_id = fields.pop("template_id", None)
    if template_id is not None:
        template = _template(session, clinic_id, template_id)
        fields.setdefault("title", template.title)
        fields.setdefault("type", template.type)
        fields.setdefault("priority", template.priority)
        fields.setdefault("description", template.description)
        fields.setdefault("due_at", now + timedelta(minutes=template.due_offset_minutes))
        fields["template_id"] = template.id
    if "due_in_minutes" in fields:
        fields["due_at"] = now + timedelta(minutes=fields.pop("due_in_minutes"))
    for name in ("title", "type", "due_at"):
        if fields.get(name) is None:
            raise ValidationFailed(name, "required (or give a template_id)")
    return fields


def create_task(*, session: Session, actor: Actor, lead_id: int, data: dict, now: datetime) -> LeadTask:
    """A follow-up task on an open lead, assigned to its coordinator unless someone is named."""
    lead = _open_lead(session, actor.clinic_id, lead_id)
    fields = _fields_from(session, actor.clinic_id, data, now)
    assignee = _assignee(session, actor.clinic_id, fields.pop("assigned_to_id", None), lead)
    if fields.get("recurrence_until") and not fields.get("recurrence"):
        raise ValidationFailed("recurrence", "give a recurrence with recurrence_until")
    task = LeadTask(
        clinic_id=actor.clinic_id,
        lead_id=lead.id,
        assigned_to_id=assignee.id,
        created_by_id=actor.user_id,
        status=TaskStatus.PENDING,
        priority=fields.pop("priority", None) or TaskPriority.NORMAL,
        origin={"kind": "template" if fields.get("template_id") else "manual", "by": actor.ref},
        revision=1,
        created_at=now,
        updated_at=now,
        **fields,
    )
    return _add_task(session, task, lead, actor.ref, actor.user_id, now)


def _add_task(
    session: Session,
    task: LeadTask,
    lead: Lead,
    actor_ref: str,
    actor_user_id,
    now: datetime,
    notify: bool = True,
):
    clinic = session.get(Clinic, task.clinic_id)
    # The first reminder's time goes in with the INSERT (set after the flush, it costs an UPDATE).
    reminders = rules.reminder_times(task.due_at, _task_offsets(task, clinic), now)
    task.reminder_at = reminders[0][1] if reminders else None
    insert_now(session, task)  # its id names its timers; a cached INSERT instead of a flush
    _schedule_timers(session, task, clinic, now)
    if notify:
        _notify_new_task(session, task, lead, actor_user_id, now)
    audit.record(
        session=session,
        clinic_id=task.clinic_id,
        actor=actor_ref,
        action="task.create",
        subject_type="task",
        subject_id=task.id,
        after=_snapshot(task),
        at=now,
    )
    return task


def create_system_task(
    *,
    session: Session,
    lead: Lead,
    title: str,
    type: str,
    due_at: datetime,
    dedupe_key: str,
    origin: dict,
    now: datetime,
    priority: str = TaskPriority.NORMAL,
    description: str | None = None,
    notify: bool = True,
    assigned_to_id: int | None = None,
    known_new: bool = False,
    on_closed_lead: bool = False,
) -> LeadTask | None:
    """A task the engine makes (rules, sequences): once per dedupe key, for `assigned_to_id` or the
    lead's coordinator (a clinic admin when the lead has none).

    `on_closed_lead`: the close itself asked for it (a kickoff, a re-engagement call); otherwise a
    closed lead takes no task."""
    # `known_new`: the caller's key names something made in this transaction (an automation step).
    existing = (
        None if known_new else session.scalar(sa.select(LeadTask).where(LeadTask.dedupe_key == dedupe_key))
    )
    if existing is not None or (lead.status not in OPEN_STATUSES and not on_closed_lead):
        return existing
    assignee_id = assigned_to_id or lead.assigned_to_id or _fallback_assignee(session, lead.clinic_id)
    if assignee_id is None:
        return None  # a clinic with nobody to do it: nothing to assign (the lead log says unassigned)
    task = LeadTask(
        clinic_id=lead.clinic_id,
        lead_id=lead.id,
        title=title,
        type=type,
        priority=priority,
        description=description,
        assigned_to_id=assignee_id,
        due_at=due_at,
        status=TaskStatus.PENDING,
        origin=origin,
        dedupe_key=dedupe_key,
        revision=1,
        created_at=now,
        updated_at=now,
    )
    return _add_task(session, task, lead, audit.SYSTEM, None, now, notify=notify)


def task_fields(*, session: Session, clinic_id: int, data: dict, now: datetime) -> dict:
    """Task fields from a request (a template filled in, due_in_minutes resolved), validated."""
    return _fields_from(session, clinic_id, data, now)


def check_assignee(*, session: Session, clinic_id: int, user_id: int, field: str) -> int:
    """The id of an active user of the clinic who works leads, else a 422 naming `field`."""
    user = session.get(User, user_id)
    if user is None or user.clinic_id != clinic_id or not user.active or user.role not in ASSIGNEE_ROLES:
        raise ValidationFailed(field, f"user {user_id} is not an active coordinator of this clinic")
    return user.id


def insert_tasks(
    *, session: Session, clinic_id: int, fields: dict, rows: list[dict], origin: dict, now: datetime
) -> list[int]:
    """Many tasks with the same fields, set-based: rows give lead_id, assigned_to_id and dedupe_key.

    A row whose dedupe_key exists is skipped (INSERT ... ON CONFLICT DO NOTHING), so a retried batch
    makes each task once. Reminders and escalation of the new tasks go to the ledger in one
    schedule_many. Returns the ids of the tasks it created.
    """
    if not rows:
        return []
    clinic = session.get(Clinic, clinic_id)
    due_at = fields["due_at"]
    reminders = rules.reminder_times(due_at, rules.clinic_reminder_offsets(clinic.settings), now)
    common = {
        "clinic_id": clinic_id,
        "title": fields["title"],
        "description": fields.get("description"),
        "type": fields["type"],
        "priority": fields.get("priority") or TaskPriority.NORMAL,
        "template_id": fields.get("template_id"),
        "due_at": due_at,
        "reminder_at": reminders[0][1] if reminders else None,
        "status": TaskStatus.PENDING,
        "origin": origin,
        "revision": 1,
        "created_at": now,
        "updated_at": now,
    }
    created = queries.insert_task_rows(session, common, rows)
    hours = rules.clinic_escalation_hours(clinic.settings)
    jobs = []
    for task_id in created:
        subject = {"clinic_id": clinic_id, "subject_type": "task", "subject_id": task_id}
        for offset, when in reminders:
            jobs.append(
                {
                    "kind": REMINDER,
                    "due_at": when,
                    "dedupe_key": f"task:{task_id}:r1:reminder:{offset}",
                    "payload": {"offset_minutes": offset, "revision": 1},
                    **subject,
                }
            )
        jobs.append(
            {
                "kind": ESCALATION,
                "due_at": due_at + timedelta(hours=hours),
                "dedupe_key": f"task:{task_id}:r1:escalate",
                "payload": {"revision": 1, "hours": hours},
                **subject,
            }
        )
    ledger_batch.schedule_ids(session=session, jobs=jobs, now=now)
    return created


def _fallback_assignee(session: Session, clinic_id: int) -> int | None:
    return session.scalar(
        sa.select(User.id)
        .where(User.clinic_id == clinic_id, User.role == Role.CLINIC_ADMIN, User.active.is_(True))
        .order_by(User.id)
        .limit(1)
    )


def _open_task(session: Session, actor: Actor, task_id: int) -> tuple[LeadTask, Lead]:
    task = get_task(session=session, clinic_id=actor.clinic_id, task_id=task_id, for_update=True)
    if task.status in CLOSED_TASK_STATUSES:
        raise InvalidTransition(f"task {task_id} is already {task.status.lower()}")
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=task.lead_id)
    return task, lead


def update_task(*, session: Session, actor: Actor, task_id: int, changes: dict, now: datetime) -> LeadTask:
    """Change an open task; a new due time or assignee replaces its reminders."""
    task, lead = _open_task(session, actor, task_id)
    before = _snapshot(task)
    if "assigned_to_id" in changes:
        changes["assigned_to_id"] = _assignee(session, actor.clinic_id, changes["assigned_to_id"], lead).id
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
        _replace_timers(session, task, session.get(Clinic, task.clinic_id), now)
    if reassigned:
        _notify_new_task(session, task, lead, actor.user_id, now)
    old, new = audit.changes(before, _snapshot(task))
    audit.record(
        session=session,
        clinic_id=task.clinic_id,
        actor=actor.ref,
        action="task.update",
        subject_type="task",
        subject_id=task.id,
        before=old,
        after=new,
        at=now,
    )
    return task


def snooze_task(
    *,
    session: Session,
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
    return update_task(session=session, actor=actor, task_id=task_id, changes={"due_at": due_at}, now=now)


def complete_task(
    *,
    session: Session,
    actor: Actor,
    task_id: int,
    notes: str | None,
    now: datetime,
    outcome: str = TaskOutcome.DONE,
) -> LeadTask:
    """Mark a task done with its outcome (TASK_COMPLETED on the lead's timeline); a recurring task
    makes its next one."""
    task, lead = _open_task(session, actor, task_id)
    before = _snapshot(task)
    task.status, task.completed_at, task.completed_by = TaskStatus.COMPLETED, now, actor.user_id
    task.outcome, task.outcome_notes, task.updated_at = str(outcome), notes, now
    _cancel_timers(session, task, now)
    activities.record(
        session=session,
        lead=lead,
        type=ActivityType.TASK_COMPLETED,
        at=now,
        actor_ref=actor.ref,
        user_id=actor.user_id,
        notes=notes,
        details={"task_id": task.id, "title": task.title, "outcome": task.outcome},
    )
    audit.record(
        session=session,
        clinic_id=task.clinic_id,
        actor=actor.ref,
        action="task.complete",
        subject_type="task",
        subject_id=task.id,
        before=before,
        after=_snapshot(task),
        at=now,
    )
    _create_next_occurrence(session, task, lead, actor, now)
    return task


def _create_next_occurrence(
    session: Session, task: LeadTask, lead: Lead, actor: Actor, now: datetime
) -> None:
    fields = rules.next_in_series(task) if task.recurrence and lead.status in OPEN_STATUSES else None
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
    _add_task(session, nxt, lead, actor.ref, task.assigned_to_id, now)


def cancel_task(*, session: Session, actor: Actor, task_id: int, now: datetime) -> LeadTask:
    """Cancel an open task and its reminders."""
    task, _lead = _open_task(session, actor, task_id)
    before = _snapshot(task)
    task.status, task.updated_at = TaskStatus.CANCELLED, now
    _cancel_timers(session, task, now)
    audit.record(
        session=session,
        clinic_id=task.clinic_id,
        actor=actor.ref,
        action="task.cancel",
        subject_type="task",
        subject_id=task.id,
        before=before,
        after=_snapshot(task),
        at=now,
    )
    return task


def cancel_open_tasks_of_lead(
    *, session: Session, lead_id: int, now: datetime, keep_event_id: int | None = None
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
        _cancel_timers(session, task, now)
    return len(tasks)


def close_tasks_of_closed_lead(*, session: Session, event, now: datetime) -> None:
    """Event consumer for lead.converted / lead.lost."""
    cancel_open_tasks_of_lead(session=session, lead_id=event.subject_id, now=now, keep_event_id=event.id)


# --- job handlers (run by the ledger, inside its claim transaction) -------------------------------


def _live_task(session: Session, job) -> LeadTask | None:
    """The job's task if it is still open and the job belongs to its current revision."""
    task = session.get(LeadTask, job.subject_id)
    if task is None or task.status not in OPEN_TASK_STATUSES:
        return None
    if (job.payload or {}).get("revision") != task.revision:
        return None
    return task


def send_task_reminder(*, session: Session, job, now: datetime) -> None:
    """In-app reminder to the assignee, `offset` minutes before the task is due."""
    task = _live_task(session, job)
    if task is None:
        return
    offset = job.payload["offset_minutes"]
    notifications.notify_staff(
        session=session,
        clinic_id=task.clinic_id,
        user_id=task.assigned_to_id,
        kind="reminder",
        title=f"Due in {_humanise(offset)}: {task.title}",
        body=f"Task {task.id} is due at {task.due_at.isoformat()}",
        link=f"/api/leads/tasks/{task.id}",
        dedupe_key=f"job:{job.id}",
        now=now,
    )
    later = rules.reminder_times(task.due_at, [o for o in _offsets(session, task) if o < offset], now)
    task.reminder_at = later[0][1] if later else None


def _offsets(session: Session, task: LeadTask) -> list[int]:
    return _task_offsets(task, session.get(Clinic, task.clinic_id))


def _task_offsets(task: LeadTask, clinic: Clinic) -> list[int]:
    return rules.task_reminder_offsets(task.reminder_offsets_minutes, clinic.settings)


def _humanise(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440} day(s)"
    if minutes % 60 == 0:
        return f"{minutes // 60} hour(s)"
    return f"{minutes} minutes"


def escalate_overdue_task(*, session: Session, job, now: datetime) -> None:
    """Still open long after due with no contact since: tell every clinic_admin, raise to URGENT, once."""
    task = _live_task(session, job)
    if task is None or task.escalated_at is not None:
        return
    if activities.contact_since(session=session, lead_id=task.lead_id, since=task.due_at):
        return
    lead = session.get(Lead, task.lead_id)
    escalation.tell_clinic_admins(
        session=session,
        clinic_id=task.clinic_id,
        title=f"Overdue {job.payload.get('hours', 24):g}h with no contact: {task.title}",
        body=f"{lead.first_name} {lead.last_name}; task {task.id} was due {task.due_at.isoformat()}",
        link=f"/api/leads/tasks/{task.id}",
        dedupe_key=f"task:{task.id}:escalation",
        now=now,
    )
    before = _snapshot(task)
    task.priority, task.escalated_at, task.updated_at = TaskPriority.URGENT, now, now
    audit.record(
        session=session,
        clinic_id=task.clinic_id,
        actor=audit.SYSTEM,
        action="task.escalate",
        subject_type="task",
        subject_id=task.id,
        before=before,
        after=_snapshot(task),
        at=now,
    )


# --- speed-to-lead ---------------------------------------------------------------------------------

# --- sweeps ----------------------------------------------------------------------------------------


def mark_overdue(*, session: Session, now: datetime) -> int:
    """Open tasks past due become OVERDUE (one conditional UPDATE: overlapping sweeps agree).

    Each task it marks emits task.overdue (integrators' webhooks); a concurrent sweep's UPDATE finds
    the rows no longer open, so every task is announced once.
    """
    marked = session.execute(
        sa.update(LeadTask)
        .where(LeadTask.status.in_((TaskStatus.PENDING, TaskStatus.IN_PROGRESS)), LeadTask.due_at < now)
        .values(status=TaskStatus.OVERDUE, updated_at=now)
        .returning(
            LeadTask.id, LeadTask.clinic_id, LeadTask.lead_id, LeadTask.assigned_to_id, LeadTask.due_at
        )
        .execution_options(synchronize_session=False)
    ).all()
    for task in marked:
        events.emit(
            session=session,
            clinic_id=task.clinic_id,
            type=events.TASK_OVERDUE,
            subject_type="task",
            subject_id=task.id,
            payload={
                "task_id": task.id,
                "lead_id": task.lead_id,
                "assigned_to_id": task.assigned_to_id,
                "due_at": task.due_at.isoformat(),
            },
            now=now,
        )
    return len(marked)


def tell_overdue(*, session: Session, event, now: datetime) -> None:
    """task.overdue consumer: the assignee is told at once (in-app, and by email unless turned off)."""
    task = session.get(LeadTask, event.payload["task_id"])
    if task is None or task.status != TaskStatus.OVERDUE or task.assigned_to_id is None:
        return  # done, snoozed or cancelled since the sweep marked it
    notifications.notify_staff(
        session=session,
        clinic_id=task.clinic_id,
        user_id=task.assigned_to_id,
        kind="overdue",
        title=f"Overdue: {task.title}",
        body=f"Task {task.id} was due {task.due_at.isoformat()}",
        link=f"/api/leads/tasks/{task.id}",
        dedupe_key=f"task:{task.id}:overdue:{task.due_at.isoformat()}",  # again if snoozed and late again
        now=now,
    )


# --- templates -------------------------------------------------------------------------------------


def list_templates(*, session: Session, clinic_id: int) -> list[TaskTemplate]:
    return list(
        session.scalars(
            sa.select(TaskTemplate).where(TaskTemplate.clinic_id == clinic_id).order_by(TaskTemplate.name)
        )
    )


def get_template(*, session: Session, clinic_id: int, template_id: int) -> TaskTemplate:
    template = session.get(TaskTemplate, template_id)
    if template is None or template.clinic_id != clinic_id:
        raise NotFound(f"task template {template_id} not found")
    return template


def _name_free(session: Session, clinic_id: int, name: str, except_id: int | None = None) -> None:
    clash = session.scalar(
        sa.select(TaskTemplate.id).where(
            TaskTemplate.clinic_id == clinic_id,
            TaskTemplate.name == name,
            TaskTemplate.id != (except_id or 0),
        )
    )
    if clash is not None:
        raise Conflict(f"a task template named {name!r} exists", errors={"json": {"name": ["taken"]}})


def create_template(*, session: Session, actor: Actor, data: dict, now: datetime) -> TaskTemplate:
    _name_free(session, actor.clinic_id, data["name"])
    template = TaskTemplate(clinic_id=actor.clinic_id, created_at=now, updated_at=now, **data)
    session.add(template)
    session.flush()
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="task_template.create",
        subject_type="task_template",
        subject_id=template.id,
        after=dict(data),
        at=now,
    )
    return template


def update_template(*, session: Session, actor: Actor, template_id: int, data: dict, now: datetime):
    template = get_template(session=session, clinic_id=actor.clinic_id, template_id=template_id)
    if "name" in data:
        _name_free(session, actor.clinic_id, data["name"], except_id=template.id)
    before = {k: getattr(template, k) for k in data}
    for key, value in data.items():
        setattr(template, key, value)
    template.updated_at = now
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="task_template.update",
        subject_type="task_template",
        subject_id=template.id,
        before=before,
        after=dict(data),
        at=now,
    )
    return template


def deactivate_template(*, session: Session, actor: Actor, template_id: int, now: datetime) -> None:
    """Templates are deactivated, not deleted: tasks made from them keep pointing at them."""
    template = get_template(session=session, clinic_id=actor.clinic_id, template_id=template_id)
    template.is_active, template.updated_at = False, now
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="task_template.deactivate",
        subject_type="task_template",
        subject_id=template.id,
        at=now,
    )
