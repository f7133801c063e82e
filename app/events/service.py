"""Write domain events into the outbox, in the caller's transaction.

Nothing here commits: an event exists exactly when the change that caused it was committed, and
a rolled-back change leaves no event behind. `emit()` only adds the event to the session; when the
transaction commits, its events are inserted together (one multi-row INSERT) and one `events.process`
ledger job naming all of them is written with its full payload (see `_schedule_processing`).
Payloads carry ids, enums and timestamps a rule needs, never protected fields (names, dates of
birth, member ids).

Event types written so far:
- lead.created        {lead_id, source_id, source_category, pipeline_stage, status, assigned_to_id, channel}
- lead.updated        {lead_id, changed: [field, ...]}
- lead.deleted        {lead_id}
- lead.stage_changed  {lead_id, previous_stage, new_stage, status}
- lead.assigned       {lead_id, from_user_id, to_user_id, reason}
- lead.converted      {lead_id, previous_stage, converted_at}
- lead.lost           {lead_id, previous_stage, reason}
- activity.logged     {activity_id, lead_id, type, direction, outcome, occurred_at, system}
- lead.stale          {lead_id, kind: "stage", stage, stage_entered_at, days_in_stage, max_days_in_stage}
                      {lead_id, kind: "quiet", stage, last_activity_at, quiet_days}
- task.overdue        {task_id, lead_id, assigned_to_id, due_at}
- lead.score_changed  {lead_id, score, previous_score, model_version} (app/intelligence)
- pipeline.stages_reordered {order: [stage id, ...]} (subject: the clinic)
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from app.db import RowBatch
from app.events import consumers
from app.events.models import DomainEvent

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

_PENDING_KEY = "events.pending"  # session.info: [(event, now)] emitted in the current transaction


def emit(
    *,
    session: Session,
    clinic_id: int,
    type: str,
    subject_type: str,
    subject_id: int,
    payload: dict,
    now: datetime,
) -> DomainEvent:
    """Add one event to the caller's transaction (committed, or rolled back, with the change).

    Not flushed here: the transaction's events are inserted together when it commits, so the
    event's id is only known after the commit's flush.
    """
    event = DomainEvent(
        clinic_id=clinic_id,
        type=type,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload,
        occurred_at=now,
        attempts=0,
    )
    session.add(event)
    session.info.setdefault(_PENDING_KEY, []).append((event, now))
    return event


def add_to_batch(
    *,
    session: Session,
    batch: RowBatch,
    event_ids: list[int],
    job_id: int,
    clinic_id: int,
    events: list[tuple[str, dict]],
    subject_type: str,
    subject_id: int,
    now: datetime,
) -> list[dict]:
    """`emit` for a change written as a `RowBatch`: the events (types and payloads, in order, with
    ids from `allocate_ids`) and their one processing job go into the batch, and the job is
    published once the caller commits. Use it in a transaction that emits nothing else."""
    written = [
        batch.insert(
            DomainEvent,
            id=event_id,
            clinic_id=clinic_id,
            type=type,
            subject_type=subject_type,
            subject_id=subject_id,
            payload=payload,
            occurred_at=now,
            attempts=0,
        )
        for event_id, (type, payload) in zip(event_ids, events, strict=True)
    ]
    consumers.add_processing_job(session=session, batch=batch, job_id=job_id, events=written, now=now)
    return written


@sa_event.listens_for(Session, "before_commit")
def _schedule_processing(session: Session) -> None:
    """At the outermost commit: insert the transaction's events and one job naming them all.

    One processing job per transaction, created once with its whole payload (not inserted with
    the first event and rewritten with every later one). Events emitted inside a savepoint that
    was rolled back were expunged from the session with it and are left out.
    """
    if session.in_nested_transaction():
        return  # a savepoint's commit: its events wait for the outermost one
    emitted = session.info.pop(_PENDING_KEY, None)
    if not emitted:
        return
    kept = [(event, now) for event, now in emitted if event in session]
    if not kept:
        return
    session.flush()  # the events (and whatever else is pending) get their ids
    first, now = kept[0]
    consumers.schedule_processing(
        session=session, event_ids=[event.id for event, _ in kept], first=first, now=now
    )


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_rolled_back(session: Session, transaction: SessionTransaction) -> None:
    """A rolled-back outermost transaction takes its events with it: drop them from the buffer."""
    if transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)


def pending(*, session: Session, limit: int = 100) -> list[DomainEvent]:
    """The oldest unprocessed events, in the order they were written."""
    stmt = (
        sa.select(DomainEvent).where(DomainEvent.processed_at.is_(None)).order_by(DomainEvent.id).limit(limit)
    )
    return list(session.scalars(stmt))


def for_subject(*, session: Session, clinic_id: int, subject_type: str, subject_id: int) -> list[DomainEvent]:
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
