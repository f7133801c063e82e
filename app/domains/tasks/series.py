"""Per-task reminders and recurring series: create and edit a task with its own reminder offsets or
reminder time, and edit one occurrence of a series or the whole series.

A recurring task carries its series' fields and slot (`series`); the next occurrence is made from
those, so "this one" edits stay with the occurrence while "series" edits carry forward.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.tasks import creation, rules, service
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.roles import Actor

THIS, SERIES = "this", "series"


def _reminder_at_as_offset(data: dict, due_at: datetime | None, now: datetime) -> dict:
    """`reminder_at` becomes the task's one reminder offset (minutes before due), so it follows due."""
    if "reminder_at" not in data:
        return data
    data = dict(data)
    reminder_at = data.pop("reminder_at")
    if reminder_at is None:
        data["reminder_offsets_minutes"] = []  # no reminder for this task
        return data
    if "reminder_offsets_minutes" in data:
        raise ValidationFailed("reminder_at", "give reminder_at or reminder_offsets_minutes, not both")
    if reminder_at <= now or due_at is None or reminder_at >= due_at:
        raise ValidationFailed("reminder_at", "must be in the future and before the task is due")
    data["reminder_offsets_minutes"] = [rules.offset_of_reminder_at(due_at, reminder_at)]
    return data


def create(*, session: UnitOfWork, actor: Actor, lead_id: int, data: dict, now: datetime) -> LeadTask:
    """A task with optional own reminders (offsets or a reminder time) and an optional recurrence."""
    if data.get("recurrence_interval") and not data.get("recurrence"):
        raise ValidationFailed("recurrence_interval", "give a recurrence with recurrence_interval")
    if "reminder_at" in data:
        fields = creation.task_fields(session=session, clinic_id=actor.clinic_id, data=data, now=now)
        data = _reminder_at_as_offset(fields, fields["due_at"], now)
    task = creation.create_task(session=session, actor=actor, lead_id=lead_id, data=data, now=now)
    if task.recurrence:
        task.series = rules.series_of(task)
    return task


def update(
    *, session: UnitOfWork, actor: Actor, task_id: int, changes: dict, apply_to: str, now: datetime
) -> LeadTask:
    """Change one occurrence (`this`), or the series (`series`): this task, the series' fields and
    slot for the occurrences to come, and any other open task of the series."""
    current = service.get_task(session=session, clinic_id=actor.clinic_id, task_id=task_id)
    changes = _reminder_at_as_offset(changes, changes.get("due_at", current.due_at), now)
    if changes.get("recurrence_interval") and not (changes.get("recurrence") or current.recurrence):
        raise ValidationFailed("recurrence_interval", "the task does not recur")
    if apply_to == SERIES and not (current.recurrence or current.series_id):
        raise ValidationFailed("apply_to", "the task is not part of a recurring series")
    task = service.update_task(session=session, actor=actor, task_id=task_id, changes=changes, now=now)
    if task.recurrence and task.series is None:
        task.series = rules.series_of(task)
    if apply_to == SERIES:
        _carry_to_series(session, actor, task, changes, now)
    return task


def _carry_to_series(session: UnitOfWork, actor: Actor, task: LeadTask, changes: dict, now: datetime) -> None:
    series = {**(task.series or rules.series_of(task))}
    series.update({k: v for k, v in changes.items() if k in rules.SERIES_FIELDS})
    if "due_at" in changes:
        series.update(rules.anchored_at(task.due_at))  # the cadence moves with the series
    task.series = series
    head = task.series_id or task.id
    others = session.scalars(
        sa.select(LeadTask.id).where(
            LeadTask.clinic_id == actor.clinic_id,
            sa.or_(LeadTask.series_id == head, LeadTask.id == head),
            LeadTask.id != task.id,
            LeadTask.status.in_(OPEN_TASK_STATUSES),
        )
    ).all()
    shared = {k: v for k, v in changes.items() if k in rules.SERIES_FIELDS}
    for other_id in others:
        other = service.update_task(session=session, actor=actor, task_id=other_id, changes=shared, now=now)
        own = other.series or rules.series_of(other)
        # Its own place in the cadence; a moved series counts again from this occurrence's slot.
        place = rules.anchored_at(datetime.fromisoformat(own["slot_at"])) if "due_at" in changes else own
        other.series = {**series, **{k: place[k] for k in ("slot_at", "anchor_at", "n") if k in place}}
