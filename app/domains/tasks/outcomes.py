"""Completing a task with a structured outcome; "rescheduled" may carry the follow-up's new due time.
A call is logged one way wherever it is logged (`log_call`: Today, the lead page, the API's task
completion with a call's outcome). A reply from the family completes the automation's open tasks to
reach them (`complete_on_reply`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityDirection, ActivityType, CallOutcome, LeadActivity
from app.domains.auth.models import Clinic
from app.domains.leads.models import Lead
from app.domains.tasks import claims, creation, service
from app.domains.tasks.alerts.timers import cancel_timers
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask, LeadTaskType, TaskOutcome, TaskStatus
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.events.types import Delivered
from app.platform.roles import Actor

if TYPE_CHECKING:
    from app.domains.activities.events import ActivityLogged


TASK_OUTCOMES = frozenset(o.value for o in TaskOutcome)
LOST_REASONS = activities.LOST_REASONS  # a not_interested call's
# How a logged call ends the call task it was for (what the reports count tasks by).
CALL_TASK_OUTCOMES = {
    CallOutcome.SPOKE.value: TaskOutcome.DONE,
    CallOutcome.VOICEMAIL.value: TaskOutcome.NO_ANSWER,
    CallOutcome.NO_ANSWER.value: TaskOutcome.NO_ANSWER,
    CallOutcome.WRONG_NUMBER.value: TaskOutcome.DONE,
    CallOutcome.CALLBACK_REQUESTED.value: TaskOutcome.DONE,  # the rule makes the callback's task
    CallOutcome.NOT_INTERESTED.value: TaskOutcome.DONE,
    CallOutcome.CONVERTED.value: TaskOutcome.DONE,
}


@dataclass(frozen=True)
class Completion:
    """How a task ended: its `outcome` (a task's, or for a call task a call's) and `notes`;
    `reschedule_to`: when the follow-up is due (only with the outcome rescheduled); a call's
    `callback_at` (callback_requested) and `lost_reason` (not_interested)."""

    outcome: str
    notes: str | None = None
    reschedule_to: datetime | None = None
    callback_at: datetime | None = None
    lost_reason: str | None = None


def complete(
    *, session: UnitOfWork, actor: Actor, task_id: int, completion: Completion, now: datetime
) -> LeadTask:
    """Complete a task with its outcome; a rescheduled one with `reschedule_to` gets a follow-up task
    then. A call task completed with a call's outcome (no_answer included) is the call logged."""
    outcome, reschedule_to = completion.outcome, completion.reschedule_to
    if outcome in CALL_TASK_OUTCOMES:
        task = service.get_task(session=session, clinic_id=actor.clinic_id, task_id=task_id)
        if task.type == LeadTaskType.CALL:
            log_call(session=session, actor=actor, task_id=task_id, call=completion, now=now)
            return task
        if outcome not in TASK_OUTCOMES:
            raise ValidationFailed("outcome", f"{outcome} is a call's outcome: only a call task ends with it")
    if completion.callback_at is not None or completion.lost_reason is not None:
        field = "callback_at" if completion.callback_at is not None else "lost_reason"
        raise ValidationFailed(field, "only when a call task is completed with a call's outcome")
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


def log_call(*, session: UnitOfWork, actor: Actor, task_id: int, call: Completion, now: datetime):
    """Log the call a call task was for, the same way wherever it is logged: the lead's PHONE_CALL
    activity with the outcome and notes (what the rules, the cadence and the timeline read; converted
    needs lead:convert; a callback's time and a lost reason kept with it), and the call task
    completed with it. The activity logged."""
    task = service.get_task(session=session, clinic_id=actor.clinic_id, task_id=task_id)
    if task.type != LeadTaskType.CALL:
        raise ValidationFailed("task_id", "not a call task: log the call on the lead's timeline")
    if call.reschedule_to is not None:
        raise ValidationFailed("reschedule_to", "a call asks for callback_at instead")
    logged = {
        "type": ActivityType.PHONE_CALL.value,
        "direction": ActivityDirection.OUTBOUND.value,
        "outcome": call.outcome,
        "notes": call.notes,
        "callback_at": call.callback_at,
        "lost_reason": call.lost_reason,
        "task_id": task.id,
    }
    activity = activities.log_activity(
        session=session, actor=actor, lead_id=task.lead_id, data=logged, now=now
    )
    if task.status in OPEN_TASK_STATUSES:
        _end_call_task(session, actor, task, call, now)
    return activity


def _end_call_task(
    session: UnitOfWork, actor: Actor, task: LeadTask, call: Completion, now: datetime
) -> None:
    """The open call task completed as its call ended. A callback's task is the "Callback requested"
    rule's (due at the time the family asked, else the next business day): one way to make it."""
    outcome = CALL_TASK_OUTCOMES[call.outcome]
    service.complete_task(
        session=session, actor=actor, task_id=task.id, notes=call.notes, outcome=outcome, now=now
    )


def complete_call_task_on_call(
    *, session: UnitOfWork, event: Delivered[ActivityLogged], now: datetime
) -> None:
    """Event consumer of `activity.logged`: a call a person logged on the lead's timeline (not from
    its task: POST /api/leads/:id/activities) ends the lead's call task that was due by then, as if
    logged from it. A redelivered event finds that task closed."""
    logged = event.data
    outbound = str(logged.direction or "") == ActivityDirection.OUTBOUND
    if logged.type != ActivityType.PHONE_CALL or not outbound or logged.system or not logged.outcome:
        return
    activity = session.get(LeadActivity, logged.activity_id)
    details = (activity.details if activity is not None else None) or {}
    if activity is None or details.get("task_id") is not None:
        return  # logged from its task (log_call)
    kind, _, ref = activity.actor.partition(":")
    if kind not in ("user", "api_key") or not ref.isdigit():
        return  # the engine's own record of a call (caller ID), not a call someone made
    task = session.scalar(
        sa.select(LeadTask)
        .where(
            LeadTask.lead_id == activity.lead_id,
            LeadTask.clinic_id == event.clinic_id,
            LeadTask.type == LeadTaskType.CALL,
            LeadTask.status.in_(OPEN_TASK_STATUSES),
            LeadTask.due_at <= activity.occurred_at,
        )
        .order_by(LeadTask.due_at, LeadTask.id)
        .limit(1)
        .with_for_update()
    )
    if task is None:
        return
    call = Completion(outcome=logged.outcome, notes=activity.notes)
    who = {"user_id" if kind == "user" else "api_key_id": int(ref)}
    person = Actor(clinic_id=event.clinic_id, permissions=frozenset(), **who)  # who logged it
    _end_call_task(session, person, task, call, now)


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
