"""Making follow-up tasks: a person's (on an open lead, from a template or not), the engine's (rules,
sequences: once per dedupe key), and many at once (bulk follow-ups, set-based). Every new task is
written by `write_tasks`, with its timers in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.assignment import staff
from app.domains.auth.models import Clinic
from app.domains.business_hours.rules import within_business_hours
from app.domains.lead_messages import pause as outreach_pause
from app.domains.leads import service as leads
from app.domains.leads.events import lead_summary
from app.domains.leads.models import OPEN_STATUSES, Lead, kept_spans
from app.domains.outbound import service as notifications
from app.domains.tasks import queries, rules
from app.domains.tasks.alerts.timers import schedule_timers, task_offsets, timer_jobs
from app.domains.tasks.models import LeadTask, TaskPriority, TaskStatus, TaskTemplate
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork, UTCDateTime, insert_now, new_row
from app.platform.db.rows import column_values
from app.platform.errors import Conflict, ValidationFailed
from app.platform.roles import Actor
from app.platform.scheduling import service as scheduling
from app.platform.stream import feed


def _open_lead(session: UnitOfWork, clinic_id: int, lead_id: int) -> Lead:
    lead = leads.get_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
    if lead.status not in OPEN_STATUSES:
        raise Conflict(f"lead {lead_id} is {lead.status.lower()}: it takes no new tasks", code="lead_closed")
    return lead


def assignee_for(
    session: UnitOfWork, clinic_id: int, user_id: int | None, lead: Lead, field: str = "assigned_to_id"
):
    """The given user (one who may take the clinic's work), else the lead's coordinator."""
    user_id = user_id or lead.assigned_to_id
    if user_id is None:
        raise ValidationFailed(field, "the lead has no coordinator; name an assignee")
    return staff.assignee(session=session, clinic_id=clinic_id, user_id=user_id, field=field)


def notify_new_task(
    session: UnitOfWork, task: LeadTask, lead: Lead, actor_user_id: int | None, now: datetime
):
    """Someone else gave this person a task: tell them at once (the in-app row; None: nobody told)."""
    if task.assigned_to_id == actor_user_id:
        return None
    return notifications.notify_staff(
        session=session,
        clinic_id=task.clinic_id,
        user_id=task.assigned_to_id,
        notice=notifications.StaffNotice(
            kind="new_task",
            title=f"New task: {task.title}",
            body=f"{lead.first_name} {lead.last_name}, due {task.due_at.isoformat()}",
            link=f"/api/leads/tasks/{task.id}",
            dedupe_key=f"task:{task.id}:assigned:{task.assigned_to_id}:r{task.revision}",
            about={"task": rules.task_summary(task), "lead": lead_summary(lead)},
        ),
        now=now,
    )


def _template(session: UnitOfWork, clinic_id: int, template_id: int) -> TaskTemplate:
    template = session.get(TaskTemplate, template_id)
    if template is None or template.clinic_id != clinic_id or not template.is_active:
        raise ValidationFailed("template_id", f"no active task template {template_id}")
    return template


def _fields_from(session: UnitOfWork, clinic_id: int, data: dict, now: datetime) -> dict:
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


def create_task(*, session: UnitOfWork, actor: Actor, lead_id: int, data: dict, now: datetime) -> LeadTask:
    """A follow-up task on an open lead, assigned to its coordinator unless someone is named."""
    lead = _open_lead(session, actor.clinic_id, lead_id)
    fields = _fields_from(session, actor.clinic_id, data, now)
    assignee = assignee_for(session, actor.clinic_id, fields.pop("assigned_to_id", None), lead)
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
    return add_task(session, task, lead, MadeBy(actor.ref, actor.user_id), now)


@dataclass(frozen=True)
class MadeBy:
    """Who makes a task: `ref` goes into the audit; its assignee is told unless they are `user_id`
    (nobody is told of a task they gave themselves)."""

    ref: str
    user_id: int | None = None


def add_task(
    session: UnitOfWork, task: LeadTask, lead: Lead, made_by: MadeBy, now: datetime, notify: bool = True
):
    """Insert a new task with its timers, tell its assignee (unless `notify` is off), audit it."""
    clinic = session.get(Clinic, task.clinic_id)
    write_tasks(session=session, clinic=clinic, tasks=[task], now=now)
    told = notify and notify_new_task(session, task, lead, made_by.user_id, now) is not None
    if not told:  # a silent task still shows up live on its assignee's screen (the notification says it else)
        note = feed.StreamNote(
            type="task.assigned",
            data={"task": rules.task_summary(task), "lead": lead_summary(lead)},
            lead_id=lead.id,
        )
        feed.record(
            session=session, clinic_id=task.clinic_id, user_id=task.assigned_to_id, note=note, now=now
        )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=task.clinic_id,
            actor=made_by.ref,
            action="task.create",
            subject_type="task",
            subject_id=task.id,
            after=rules.audit_snapshot(task),
            at=now,
        ),
    )
    return task


@dataclass(frozen=True)
class SystemTask:
    """A task the engine asks for: what it is, when due, its dedupe key and origin; for
    `assigned_to_id` or the lead's coordinator. `known_new`: the key names something made in this
    transaction (nothing to look up); `on_closed_lead`: the close itself asked for it."""

    title: str
    type: str
    due_at: datetime
    dedupe_key: str
    origin: dict
    priority: str = TaskPriority.NORMAL
    description: str | None = None
    notify: bool = True
    assigned_to_id: int | None = None
    known_new: bool = False
    on_closed_lead: bool = False
    escalate_after_minutes: int | None = None  # None: the clinic's escalation_hours after due
    # Raised to the lead's priority (a high or urgent lead's task); False: `priority` as asked.
    follow_lead_priority: bool = True


def create_system_task(
    *, session: UnitOfWork, lead: Lead, task: SystemTask, now: datetime
) -> LeadTask | None:
    """A task the engine makes (rules, sequences): once per dedupe key, for `assigned_to_id` or the
    lead's coordinator (a clinic admin when the lead has none).

    `on_closed_lead`: the close itself asked for it (a kickoff, a re-engagement call); otherwise a
    closed lead takes no task."""
    asked, dedupe_key = task, task.dedupe_key  # `task` names the made row below
    # `known_new`: the caller's key names something made in this transaction (an automation step).
    existing = (
        None
        if asked.known_new
        else session.scalar(sa.select(LeadTask).where(LeadTask.dedupe_key == dedupe_key))
    )
    if existing is not None or (lead.status not in OPEN_STATUSES and not asked.on_closed_lead):
        return existing
    assignee_id = asked.assigned_to_id or lead.assigned_to_id
    if assignee_id is None:
        assignee_id = staff.fallback_assignee(session, lead.clinic_id)
    if assignee_id is None:
        return None  # a clinic with nobody to do it: nothing to assign (the lead log says unassigned)
    due_at = after_pause(session.get(Clinic, lead.clinic_id), asked.due_at)
    made = new_task(
        clinic_id=lead.clinic_id,
        lead_id=lead.id,
        title=asked.title,
        type=asked.type,
        priority=rules.raised_to_lead(asked.priority, lead.priority if asked.follow_lead_priority else None),
        description=asked.description,
        assigned_to_id=assignee_id,
        due_at=due_at,
        status=TaskStatus.PENDING,
        origin=asked.origin,
        escalate_after_minutes=asked.escalate_after_minutes,
        dedupe_key=dedupe_key,
        revision=1,
        created_at=now,
        updated_at=now,
    )
    return add_task(session, made, lead, MadeBy(audit.SYSTEM), now, notify=asked.notify)


def after_pause(clinic: Clinic, due_at: datetime) -> datetime:
    """A task the engine makes is not due while the clinic is closed (its outreach paused for the
    holidays): inside a bounded pause it is due at the first opening from the pause's end. An
    open-ended pause has no end to move to: the due time stays."""
    end = outreach_pause.bounded_end(clinic.settings, due_at)
    return due_at if end is None else within_business_hours(clinic, end)


def task_fields(*, session: UnitOfWork, clinic_id: int, data: dict, now: datetime) -> dict:
    """Task fields from a request (a template filled in, due_in_minutes resolved), validated."""
    return _fields_from(session, clinic_id, data, now)


def new_task(**values) -> LeadTask:
    """A new task's row, not yet in any unit of work (every column set: no instrumented setter
    per attribute)."""
    return new_row(LeadTask, **values)


def alike_tasks(
    *, clinic_id: int, fields: dict, rows: list[dict], origin: dict, now: datetime
) -> list[LeadTask]:
    """New tasks with the same `fields` (title, type, due_at; priority, description, template_id),
    one per row of lead_id, assigned_to_id and dedupe_key (a bulk follow-up's chunk)."""
    common = {
        "clinic_id": clinic_id,
        "title": fields["title"],
        "description": fields.get("description"),
        "type": fields["type"],
        "priority": fields.get("priority") or TaskPriority.NORMAL,
        "template_id": fields.get("template_id"),
        "due_at": fields["due_at"],
        "status": TaskStatus.PENDING,
        "origin": origin,
        "revision": 1,
        "created_at": now,
        "updated_at": now,
    }
    return [new_task(**common, **row) for row in rows]


def write_tasks(
    *, session: UnitOfWork, clinic: Clinic, tasks: list[LeadTask], now: datetime, bulk: bool = False
) -> list[int]:
    """Write new tasks of `clinic` (built by `new_task`, or a person's) with their timers
    (reminders before the due time, the escalation after it); the ids of those written. The one
    way a task is made.

    Each task's first reminder time goes in with its INSERT (set after, it costs an UPDATE). One by
    one: a cached INSERT each (its id names its timers), the timers written with the unit's other
    ledger rows at its commit. `bulk` (tasks that differ only in lead, assignee and dedupe key: a
    bulk follow-up's chunk): one set-based INSERT ... ON CONFLICT (dedupe_key) DO NOTHING, so a
    retried chunk makes each task once, and the new tasks' timers in one ledger statement.
    """
    if not bulk:
        for task in tasks:
            reminders = rules.reminder_times(task.due_at, task_offsets(task, clinic), now)
            task.reminder_at = reminders[0][1] if reminders else None
            insert_now(session, task)
            schedule_timers(session, task, clinic, now)
        _first_task_of_leads(session, {task.lead_id for task in tasks}, now)
        return [task.id for task in tasks]
    if not tasks:
        return []
    first = tasks[0]
    reminders = rules.reminder_times(first.due_at, task_offsets(first, clinic), now)
    for task in tasks:
        task.reminder_at = reminders[0][1] if reminders else None
    created = queries.insert_task_rows(session, [column_values(task) for task in tasks])
    hours = rules.clinic_escalation_hours(clinic.settings)
    jobs = [
        job
        for task_id in created
        for job in timer_jobs(
            clinic_id=clinic.id,
            task_id=task_id,
            revision=first.revision,
            due_at=first.due_at,
            reminders=reminders,
            escalation_hours=hours,
        )
    ]
    for job in jobs:
        session.schedule(scheduling.Job(now=now, **job))
    _first_task_of_leads(session, {task.lead_id for task in tasks}, now)
    return created


def _first_task_of_leads(session: UnitOfWork, lead_ids: set[int], now: datetime) -> None:
    """When each lead got its first task, kept on the lead: speed to lead's split reads it from
    there (app/domains/analytics/coordination.py; the lead's kept firsts are listed in
    app/domains/analytics/rollups.py), not from a probe of the tasks per lead; with the spans that
    start or end at it (leads.models.kept_spans)."""
    session.flush()  # the spans are worked out from the lead's columns as stored
    session.connection().execute(_FIRST_TASK, {"lead_ids": sorted(lead_ids), "now": now})


# Built once: every new lead's first task runs it, and building it (the spans' SQL) cost more than
# running it.
_NOW = sa.bindparam("now", type_=UTCDateTime())
_FIRST_TASK = (
    sa.update(Lead.__table__)
    .where(Lead.id.in_(sa.bindparam("lead_ids", expanding=True)), Lead.first_task_at.is_(None))
    .values(first_task_at=_NOW, **kept_spans(first_task_at=_NOW))
)
