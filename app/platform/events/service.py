"""Write domain events into the outbox, in the caller's transaction.

Nothing here commits: an event exists exactly when the change that caused it was committed, and
a rolled-back change leaves no event behind. `emit()` only adds the event to the unit of work;
when it commits, its events are inserted together and one `events.process` ledger job naming all
of them is written with its full payload (`consumers.processing_job`, app/platform/db/uow.py).
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


def emit(
    *, session: UnitOfWork, event: Event, subject: Subject, now: datetime, automation: bool = True
) -> DomainEvent:
    """Add one event to the caller's unit of work (committed, or rolled back, with the change).

    The unit's events are inserted together, and one processing job naming them all is written
    with its jobs as it commits (`consumers.processing_job`); the event's id is known only then.
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
    # The job names the events by id, which they get when inserted together at the commit: the
    # unit builds it then, once for all its events.
    session.emit(row, processing_job=functools.partial(consumers.processing_job, session.database.events))
    return row


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
