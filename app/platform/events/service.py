"""Write domain events into the outbox, in the caller's transaction.

Nothing here commits: an event exists exactly when the change that caused it was committed, and
a rolled-back change leaves no event behind. `emit()` only adds the event to the unit of work;
when it commits, its events are inserted together and one `events.process` ledger job naming all
of them is written with its full payload (see `_schedule_processing`).
Payloads carry ids, enums and timestamps a rule needs, never protected fields (names, dates of
birth, member ids).

Event types written so far:
- lead.created        {lead_id, source_id, source_category, pipeline_stage, status, assigned_to_id, channel}
- lead.updated        {lead_id, changed: [field, ...]}
- lead.deleted        {lead_id}
- lead.merged         {lead_id, merged_lead_id, filled: [field, ...], moved: {table: rows}} (merging)
- lead.stage_changed  {lead_id, previous_stage, new_stage, status}
- lead.assigned       {lead_id, from_user_id, to_user_id, reason}
- lead.converted      {lead_id, previous_stage, converted_at}
- lead.lost           {lead_id, previous_stage, reason}
- activity.logged     {activity_id, lead_id, type, direction, outcome, occurred_at, system}
- lead.stale          {lead_id, kind: "stage", stage, stage_entered_at, days_in_stage, max_days_in_stage}
                      {lead_id, kind: "quiet", stage, last_activity_at, quiet_days}
- task.overdue        {task_id, lead_id, assigned_to_id, due_at}
- lead.score_changed  {lead_id, score, previous_score, model_version} (app/domains/intelligence)
- pipeline.stages_reordered {order: [stage id, ...]} (subject: the clinic)
- bulk.completed      {bulk_job_id, kind, total, done, failed} (app/domains/bulk: its last chunk counted)
- message.bounced     {lead_id, channel, notification_id, hard} (a provider's bounce report)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.platform.db import UnitOfWork, new_row
from app.platform.events import consumers
from app.platform.events.models import DomainEvent

LEAD_CREATED = "lead.created"
LEAD_UPDATED = "lead.updated"
LEAD_DELETED = "lead.deleted"
LEAD_STAGE_CHANGED = "lead.stage_changed"
LEAD_ASSIGNED = "lead.assigned"
LEAD_CONVERTED = "lead.converted"
LEAD_LOST = "lead.lost"
ACTIVITY_LOGGED = "activity.logged"
LEAD_STALE = "lead.stale"  # over its stage's limit (once per stay) or quiet (once per quiet spell)
TASK_OVERDUE = "task.overdue"  # the overdue sweep marked the task
STAGES_REORDERED = "pipeline.stages_reordered"
BULK_COMPLETED = "bulk.completed"
MESSAGE_BOUNCED = "message.bounced"
# Engagement (issue 60): a family opened an email or followed one of a message's links, once per
# email (the first counted open) and once per message and link (app/domains/engagement). Payload:
# {"lead_id": int, "notification_id": int, "machine": bool} for an open (machine: a mail proxy's
# fetch, emitted only where the clinic counts those), {"lead_id": int, "notification_id": int,
# "link": int} for a click (the link's index in the message). The subject is the lead.
EMAIL_OPENED = "email.opened"
LINK_CLICKED = "link.clicked"


@dataclass(frozen=True)
class Subject:
    """What an event is about: one row of one clinic (its lead 7, its bulk job 3, the clinic itself)."""

    clinic_id: int
    type: str
    id: int

    @classmethod
    def lead(cls, lead) -> Subject:
        return cls(lead.clinic_id, "lead", lead.id)


_PROCESSING = "events.processing"  # the unit's events, for its one processing job


def emit(
    *, session: UnitOfWork, type: str, subject: Subject, payload: dict, now: datetime, automation: bool = True
) -> DomainEvent:
    """Add one event to the caller's unit of work (committed, or rolled back, with the change).

    The unit's events are inserted together, and one processing job naming them all is scheduled
    before it commits (`_schedule_processing`); the event's id is known only then.
    `automation=False`: the event says `"automation": false`: consumers still see it (webhooks,
    reports), rules do not fire (a historical import).
    """
    if not automation:
        payload = {**payload, "automation": False}
    event = new_row(
        DomainEvent,
        clinic_id=subject.clinic_id,
        type=type,
        subject_type=subject.type,
        subject_id=subject.id,
        payload=payload,
        occurred_at=now,
        attempts=0,
    )
    session.emit(event)
    # The job names the events by id, which they get when inserted together at the commit: it is
    # scheduled then, once for all the unit's events (the unit collects them under one key).
    session.before_commit(_PROCESSING, event, functools.partial(_schedule_processing, session))
    return event


def _schedule_processing(session: UnitOfWork, emitted: list[DomainEvent]) -> None:
    """Before the unit commits: one processing job naming all its events, through `session.schedule`.

    One processing job per transaction, created once with its whole payload (not inserted with
    the first event and rewritten with every later one). Events emitted inside a savepoint that
    was rolled back were expunged from the session with it and are left out.
    """
    kept = [event for event in emitted if event in session]
    if not kept:
        return
    session.flush()  # the events' ids, for the job to name
    consumers.schedule_processing(session=session, events=kept, now=kept[0].occurred_at)


def pending(*, session: UnitOfWork, limit: int = 100) -> list[DomainEvent]:
    """The oldest unprocessed events, in the order they were written."""
    stmt = (
        sa.select(DomainEvent).where(DomainEvent.processed_at.is_(None)).order_by(DomainEvent.id).limit(limit)
    )
    return list(session.scalars(stmt))


def for_subject(
    *, session: UnitOfWork, clinic_id: int, subject_type: str, subject_id: int
) -> list[DomainEvent]:
    """Every event about one subject, oldest first."""
    stmt = (
        sa.select(DomainEvent)
        .where(
            DomainEvent.clinic_id == clinic_id,
            DomainEvent.subject_type == subject_type,
            DomainEvent.subject_id == subject_id,
        )
        .order_by(DomainEvent.id)
    )
    return list(session.scalars(stmt))
