"""Completing a task with a structured outcome; "rescheduled" may carry the follow-up's new due time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domains.tasks import creation, service
from app.domains.tasks.models import LeadTask, TaskOutcome
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.roles import Actor


@dataclass(frozen=True)
class Completion:
    """How a task ended: its `outcome` and `notes`; `reschedule_to`: when the follow-up is due (only
    with the outcome rescheduled)."""

    outcome: str
    notes: str | None = None
    reschedule_to: datetime | None = None


def complete(
    *, session: UnitOfWork, actor: Actor, task_id: int, completion: Completion, now: datetime
) -> LeadTask:
    """Complete a task with its outcome; a rescheduled one with `reschedule_to` gets a follow-up task then."""
    outcome, reschedule_to = completion.outcome, completion.reschedule_to
    if reschedule_to is not None:
        if outcome != TaskOutcome.RESCHEDULED:
            raise ValidationFailed("reschedule_to", "only with the outcome rescheduled")
        if reschedule_to <= now:
            raise ValidationFailed("reschedule_to", "must be in the future")
    task = service.complete_task(
        session=session, actor=actor, task_id=task_id, notes=completion.notes, outcome=outcome, now=now
    )
    if reschedule_to is not None:
        _follow_up(session, actor, task, reschedule_to, now)
    return task


def _follow_up(
    session: UnitOfWork, actor: Actor, task: LeadTask, due_at: datetime, now: datetime
) -> LeadTask:
    """The same task again, due at `due_at`, linked to the one it replaces."""
    return creation.create_task(
        session=session,
        actor=actor,
        lead_id=task.lead_id,
        data={
            "title": task.title,
            "description": task.description,
            "type": task.type,
            "priority": task.priority,
            "assigned_to_id": task.assigned_to_id,
            "due_at": due_at,
            "previous_task_id": task.id,
        },
        now=now,
    )
