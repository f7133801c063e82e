"""Processing the outbox: each committed transaction's events are handed to their consumers once.

`emit()` adds, in the same transaction as the change, one job-ledger row (`events.process`, or
`events.process_later` when all its events are the sweeps' types, PROCESSED_LATER of
app/handlers.py) naming the transaction's events (written once, when the transaction commits). The
ledger then gives the processing its guarantees: dispatched after commit, picked up by the sweep if
that dispatch is lost, run once (the claim), retried on error. A consumer is plain service code of a
higher domain, registered by event type with `on(...)` (by `wire()` of app/handlers.py, from
EVENT_HANDLERS).

A job whose attempt failed is split on its next one, one job per event (`split`): a consumer failing
on one event (or a batch killed for its time) then holds back only that event, which ends dead on
its own for an admin to retry. An event no job names is given one by a sweep (recovery.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from app.platform.db import UnitOfWork, UTCDateTime
from app.platform.events.models import DomainEvent
from app.platform.scheduling import service as scheduling

PROCESS_KIND = "events.process"
# The processing of a transaction whose events no new lead waits on (`process_later`): on a queue
# other than the realtime one (app/handlers.py).
PROCESS_LATER_KIND = "events.process_later"
PROCESS_KINDS = (PROCESS_KIND, PROCESS_LATER_KIND)
ANY_TYPE = "*"

_CONSUMERS: dict[str, list[Callable]] = {}
_AFTER_EVENTS: list[Callable] = []
_LATER_TYPES: set[str] = set()


def on(event_type: str, consumer: Callable) -> None:
    """Call `consumer(session=, event=, now=)` for every committed event of `event_type` ("*": all)."""
    consumers = _CONSUMERS.setdefault(event_type, [])
    if consumer not in consumers:
        consumers.append(consumer)


def after_events(consumer: Callable) -> None:
    """Call `consumer(session=, events=, now=)` once per processing, after the per-event consumers,
    with the events it processed: for a consumer that works per subject (once for a lead however
    many of its events), not per event."""
    if consumer not in _AFTER_EVENTS:
        _AFTER_EVENTS.append(consumer)


def process_later(event_type: str) -> None:
    """Process the events of `event_type` as PROCESS_LATER_KIND when a transaction emits no other
    kind: work a sweep or a timer does in bulk (the overdue sweep's hundreds of tasks), which must
    never hold the realtime queue's new leads back."""
    _LATER_TYPES.add(event_type)


def consumers_of(event_type: str) -> list[Callable]:
    return [*_CONSUMERS.get(event_type, []), *_CONSUMERS.get(ANY_TYPE, [])]


def _processing_kind(events: list[DomainEvent]) -> str:
    return PROCESS_LATER_KIND if all(event.type in _LATER_TYPES for event in events) else PROCESS_KIND


def processing_job(events: list[DomainEvent]) -> scheduling.Job:
    """A transaction's one processing job, naming all its events (the first names the job), which
    its unit writes with its other jobs as it commits (app/platform/db/uow.py): created once with
    its whole payload, not inserted with the first event and rewritten with every later one."""
    first = events[0]
    return scheduling.Job(
        kind=_processing_kind(events),
        due_at=first.occurred_at,
        dedupe_key=f"events:{first.id}",
        now=first.occurred_at,
        clinic_id=first.clinic_id,
        subject_type=first.subject_type,
        subject_id=first.subject_id,
        payload={"event_ids": [event.id for event in events]},
        origin={"event_id": first.id, "event_type": first.type},
    )


_EVENTS = DomainEvent.__table__
# Built once, on the table: a Core UPDATE skips the ORM's bulk-update machinery (nothing reads the
# events' processed_at after this in the transaction, so no session objects need synchronising).
_MARK_PROCESSED = (
    sa.update(_EVENTS)
    .where(_EVENTS.c.id.in_(sa.bindparam("event_ids", expanding=True)))
    .values(processed_at=sa.bindparam("now", type_=UTCDateTime()), attempts=_EVENTS.c.attempts + 1)
)


def process_events(*, session: UnitOfWork, job, now: datetime) -> None:
    """The job handler: run each unprocessed event's consumers, then mark it processed (all or nothing).

    A job naming several events that failed once is split instead (`split`): one consumer failing
    on one event must not hold back, nor kill with the job, the others of its transaction.
    """
    batch = session.scalars(
        sa.select(DomainEvent).where(DomainEvent.id.in_(job.payload["event_ids"])).order_by(DomainEvent.id)
    )
    unprocessed = [event for event in batch if event.processed_at is None]
    if job.attempts > 1 and len(unprocessed) > 1:
        split(session=session, events=unprocessed, now=now)
        return
    processed = []
    for event in unprocessed:  # one query for the transaction's events, in the order they were written
        for consumer in consumers_of(event.type):
            consumer(session=session, event=event, now=now)
        processed.append(event)
    if processed:  # one UPDATE for them all, in the consumers' transaction
        for consumer in _AFTER_EVENTS:
            consumer(session=session, events=processed, now=now)
        session.execute(_MARK_PROCESSED, {"event_ids": [event.id for event in processed], "now": now})


def split(*, session: UnitOfWork, events: list[DomainEvent], now: datetime) -> None:
    """One processing job per event, each with the ledger's retries: the good ones are processed
    (once: each marks its event in its own transaction), a failing one ends dead on its own, for an
    admin to retry (/jobs/<id>/retry)."""
    for event in events:
        schedule_alone(session=session, event=event, now=now)


def schedule_alone(*, session: UnitOfWork, event: DomainEvent, now: datetime) -> None:
    """A processing job of one event's own; its key is the event's, so asking twice makes one."""
    session.schedule(
        scheduling.Job(
            kind=_processing_kind([event]),
            due_at=now,
            dedupe_key=alone_key(event.id),
            now=now,
            clinic_id=event.clinic_id,
            subject_type=event.subject_type,
            subject_id=event.subject_id,
            payload={"event_ids": [event.id]},
            origin={"event_id": event.id, "event_type": event.type},
        )
    )


def alone_key(event_id: int) -> str:
    return f"events:{event_id}:alone"
