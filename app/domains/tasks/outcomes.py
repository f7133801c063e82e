"""Completing a task with a structured outcome; "rescheduled" may carry the follow-up's new due time.
A reply from the family completes the automation's open tasks to reach them (`complete_on_reply`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityType
from app.domains.auth.models import Clinic
from app.domains.leads.models import Lead
from app.domains.tasks import claims, creation, service
from app.domains.tasks.alerts.timers import cancel_timers
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask, TaskOutcome, TaskStatus
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.events.types import Delivered
from app.platform.roles import Actor

if TYPE_CHECKING:
    from app.domains.activities.events import ActivityLogged


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


# The clinic setting that turns it off (on unless set to false).
COMPLETE_ON_REPLY = "complete_tasks_on_reply"
# The tasks that exist to reach the family: a call (initial contact, follow-up calls), a text, an email.
REACH_TYPES = ("CALL", "SMS", "EMAIL")
MESSAGE_TYPES = {ActivityType.SMS.value: "SMS", ActivityType.EMAIL.value: "email"}


def complete_on_reply(*, session: UnitOfWork, event: Delivered[ActivityLogged], now: datetime) -> None:
    """Event consumer of `activity.logged`: an inbound text or email from the family (contact, not an
    auto-reply) completes the lead's open reach-the-lead tasks that the automation made, each with
    "Replied by <channel>" on the timeline. A redelivered message is one activity, so one run; and a
    run finds the tasks it completed closed."""
    activity = event.data
    channel = MESSAGE_TYPES.get(activity.type)
    inbound = str(activity.direction or "").lower() == "inbound"
    if channel is None or not inbound or not activity.contact:
        return
    lead = session.get(Lead, activity.lead_id)
    if lead is None or lead.clinic_id != event.clinic_id:
        return
    if (session.get(Clinic, lead.clinic_id).settings or {}).get(COMPLETE_ON_REPLY) is False:
        return
    tasks = session.scalars(
        sa.select(LeadTask)
        .where(
            LeadTask.lead_id == lead.id,
            LeadTask.status.in_(OPEN_TASK_STATUSES),
            LeadTask.type.in_(REACH_TYPES),
        )
        .order_by(LeadTask.id)
        .with_for_update()
    )
    for task in [task for task in tasks if (task.origin or {}).get("kind") == "automation"]:
        task.status, task.completed_at, task.outcome, task.updated_at = TaskStatus.COMPLETED, now, "done", now
        claims.release(task)
        cancel_timers(session, task, now)
        activities.record(
            session=session,
            lead=lead,
            facts=activities.ActivityFacts(
                type=ActivityType.TASK_COMPLETED,
                at=now,
                notes=f"Replied by {channel}",
                details={"task_id": task.id, "outcome": task.outcome, "replied_by": channel.lower()},
            ),
        )
