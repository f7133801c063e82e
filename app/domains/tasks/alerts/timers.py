"""A task's timers: reminder jobs before its due time and one escalation job after it, written on the
ledger in the same transaction as the change that needs them. Changing the due time or the
assignee bumps `revision` and replaces them; completing or cancelling cancels them. The reminder
job's handler is here; the escalation's is in escalation.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.domains.auth.models import Clinic
from app.domains.outbound import service as notifications
from app.domains.tasks import rules
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask
from app.platform.db import UnitOfWork
from app.platform.scheduling import service as scheduling
from app.platform.scheduling.memo import Memo

REMINDER = "task.reminder"
ESCALATION = "task.escalate"
TIMER_KINDS = (REMINDER, ESCALATION)


def schedule_timers(session: UnitOfWork, task: LeadTask, clinic: Clinic, now: datetime) -> None:
    """Reminder jobs before the due time and one escalation job after it, for the task's revision."""
    reminders = rules.reminder_times(task.due_at, task_offsets(task, clinic), now)
    first = reminders[0][1] if reminders else None
    if task.reminder_at != first:
        task.reminder_at = first
    hours = escalation_hours_of(task, clinic) if task.escalated_at is None else None
    jobs = timer_jobs(
        clinic_id=task.clinic_id,
        task_id=task.id,
        revision=task.revision,
        due_at=task.due_at,
        reminders=reminders,
        escalation_hours=hours,
    )
    for job in jobs:
        session.schedule(scheduling.Job(now=now, **job))


def escalation_hours_of(task: LeadTask, clinic: Clinic) -> float:
    """Hours after its due time an open task escalates: its own (a rule's urgent call), else the clinic's."""
    if task.escalate_after_minutes:
        return task.escalate_after_minutes / 60
    return rules.clinic_escalation_hours(clinic.settings)


def timer_jobs(
    *,
    clinic_id: int,
    task_id: int,
    revision: int,
    due_at: datetime,
    reminders: list[tuple[int, datetime]],
    escalation_hours: float | None,
) -> list[dict]:
    """The ledger jobs of a task's timers (`schedule`'s keywords): a reminder at each of
    `reminders` (offset, time) and, unless `escalation_hours` is None, the escalation after the
    due time. The one builder of a task's timers, for one task as for a bulk of new ones."""
    subject = {"clinic_id": clinic_id, "subject_type": "task", "subject_id": task_id}
    jobs = [
        {
            "kind": REMINDER,
            "due_at": when,
            "dedupe_key": f"task:{task_id}:r{revision}:reminder:{offset}",
            "payload": {"offset_minutes": offset, "revision": revision},
            **subject,
        }
        for offset, when in reminders
    ]
    if escalation_hours is not None:
        jobs.append(
            {
                "kind": ESCALATION,
                "due_at": due_at + timedelta(hours=escalation_hours),
                "dedupe_key": f"task:{task_id}:r{revision}:escalate",
                "payload": {"revision": revision, "hours": escalation_hours},
                **subject,
            }
        )
    return jobs


def replace_timers(session: UnitOfWork, task: LeadTask, clinic: Clinic, now: datetime) -> None:
    """A new revision of the task's timers (its due time, assignee or offsets changed)."""
    task.revision += 1
    scheduling.cancel(session=session, now=now, subject_type="task", subject_id=task.id, kinds=TIMER_KINDS)
    schedule_timers(session, task, clinic, now)


def cancel_timers(session: UnitOfWork, task: LeadTask, now: datetime) -> None:
    """No more reminders or escalation for the task (completed or cancelled)."""
    task.reminder_at = None
    scheduling.cancel(session=session, now=now, subject_type="task", subject_id=task.id, kinds=TIMER_KINDS)


def live_task(session: UnitOfWork, job) -> LeadTask | None:
    """The job's task if it is still open and the job belongs to its current revision."""
    task = session.get(LeadTask, job.subject_id)
    if task is None or task.status not in OPEN_TASK_STATUSES:
        return None
    if (job.payload or {}).get("revision") != task.revision:
        return None
    return task


def send_task_reminder(*, session: UnitOfWork, job, now: datetime, memo: Memo) -> None:
    """In-app reminder to the assignee, `offset` minutes before the task is due."""
    task = live_task(session, job)
    if task is None:
        return
    offset = job.payload["offset_minutes"]
    notifications.notify_staff(
        session=session,
        clinic_id=task.clinic_id,
        user_id=task.assigned_to_id,
        notice=notifications.StaffNotice(
            kind="reminder",
            title=f"Due in {_humanise(offset)}: {task.title}",
            body=f"Task {task.id} is due at {task.due_at.isoformat()}",
            link=f"/api/leads/tasks/{task.id}",
            dedupe_key=f"job:{job.id}",
            about={"task": rules.task_summary(task)},
        ),
        now=now,
        memo=memo,
    )
    later = rules.reminder_times(task.due_at, [o for o in _offsets(session, task) if o < offset], now)
    task.reminder_at = later[0][1] if later else None


def _offsets(session: UnitOfWork, task: LeadTask) -> list[int]:
    return task_offsets(task, session.get(Clinic, task.clinic_id))


def task_offsets(task: LeadTask, clinic: Clinic) -> list[int]:
    """Minutes before due of the task's reminders: its own offsets, else the clinic's."""
    return rules.task_reminder_offsets(task.reminder_offsets_minutes, clinic.settings)


def _humanise(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440} day(s)"
    if minutes % 60 == 0:
        return f"{minutes // 60} hour(s)"
    return f"{minutes} minutes"
