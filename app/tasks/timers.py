"""A task's timers: reminder jobs before its due time and one escalation job after it, written on the
ledger in the same transaction as the change that needs them. Changing the due time or the
assignee bumps `revision` and replaces them; completing or cancelling cancels them. The reminder
job's handler is here; the escalation's is in overdue.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.auth.models import Clinic
from app.notifications import staff as notifications
from app.scheduling import service as scheduling
from app.tasks import rules
from app.tasks.models import OPEN_TASK_STATUSES, LeadTask

REMINDER = "task.reminder"
ESCALATION = "task.escalate"
TIMER_KINDS = (REMINDER, ESCALATION)


def schedule_timers(session: Session, task: LeadTask, clinic: Clinic, now: datetime) -> None:
    """Reminder jobs before the due time and one escalation job after it, for the task's revision."""
    reminders = rules.reminder_times(task.due_at, task_offsets(task, clinic), now)
    common = {
        "session": session,
        "now": now,
        "clinic_id": task.clinic_id,
        "subject_type": "task",
        "subject_id": task.id,
    }
    for offset, when in reminders:
        scheduling.schedule_at_commit(
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
        scheduling.schedule_at_commit(
            kind=ESCALATION,
            due_at=task.due_at + timedelta(hours=hours),
            dedupe_key=f"task:{task.id}:r{task.revision}:escalate",
            payload={"revision": task.revision, "hours": hours},
            **common,
        )


def replace_timers(session: Session, task: LeadTask, clinic: Clinic, now: datetime) -> None:
    """A new revision of the task's timers (its due time, assignee or offsets changed)."""
    task.revision += 1
    scheduling.cancel(session=session, now=now, subject_type="task", subject_id=task.id, kinds=TIMER_KINDS)
    schedule_timers(session, task, clinic, now)


def cancel_timers(session: Session, task: LeadTask, now: datetime) -> None:
    """No more reminders or escalation for the task (completed or cancelled)."""
    task.reminder_at = None
    scheduling.cancel(session=session, now=now, subject_type="task", subject_id=task.id, kinds=TIMER_KINDS)


def live_task(session: Session, job) -> LeadTask | None:
    """The job's task if it is still open and the job belongs to its current revision."""
    task = session.get(LeadTask, job.subject_id)
    if task is None or task.status not in OPEN_TASK_STATUSES:
        return None
    if (job.payload or {}).get("revision") != task.revision:
        return None
    return task


def send_task_reminder(*, session: Session, job, now: datetime) -> None:
    """In-app reminder to the assignee, `offset` minutes before the task is due."""
    task = live_task(session, job)
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
