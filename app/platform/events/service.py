"""Write domain events into the outbox, in the caller's transaction.

Nothing here commits: an event exists exactly when the change that caused it was committed, and
a rolled-back change leaves no event behind. `emit()` only adds the event to the unit of work;
when it commits, its events are inserted together and one `events.process` ledger job naming all
of them is written with its full payload (see `_schedule_processing`).
Each event is a type of its owning domain's `events.py` (app/platform/events/types.py); the
events written, with their fields, are listed in docs/architecture/events.md, generated from the
types. Payloads carry ids, enums and timestamps a rule needs, never protected fields (names, dates
of birth, member ids).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.platform.db import UnitOfWork, new_row
from app.platform.events import consumers
from app.platform.events.models import DomainEvent
from app.platform.events.types import Event


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
    *, session: UnitOfWork, event: Event, subject: Subject, now: datetime, automation: bool = True
) -> DomainEvent:
    """Add one event to the caller's unit of work (committed, or rolled back, with the change).

    The unit's events are inserted together, and one processing job naming them all is scheduled
    before it commits (`_schedule_processing`); the event's id is known only then.
    `automation=False`: the event says `"automation": false`: consumers still see it (webhooks,
    reports), rules do not fire (a historical import).
    """
    payload = event.payload()
    if not automation:
        payload = {**payload, "automation": False}
    row = new_row(
        DomainEvent,
        clinic_id=subject.clinic_id,
        type=event.NAME,
        version=event.VERSION,
        subject_type=subject.type,
        subject_id=subject.id,
        payload=payload,
        occurred_at=now,
        attempts=0,
    )
    session.emit(row)
    # The job names the events by id, which they get when inserted together at the commit: it is
    # scheduled then, once for all the unit's events (the unit collects them under one key).
    session.before_commit(_PROCESSING, row, functools.partial(_schedule_processing, session))
    return row


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
