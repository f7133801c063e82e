"""Processing the outbox: each committed transaction's events are handed to their consumers once.

`emit()` adds, in the same transaction as the change, one job-ledger row (`events.process`, or
`events.process_later` when all its events are the sweeps' types, PROCESSED_LATER of
app/handlers.py) naming the transaction's events (written once, when the transaction commits). The
ledger then gives the processing its guarantees: dispatched after commit, picked up by the sweep if
that dispatch is lost, run once (the claim), retried on error. A consumer is plain service code of a
higher domain, listed by event type in EVENT_HANDLERS of app/handlers.py, and handed each event as
its type (`Delivered[E]`, app/platform/events/types.py), not the stored row; app/bootstrap.py builds
the engine's map from it (consumer_map.EventHandlers) and binds it to `process_events`, the job
kinds' handler. Which kind a transaction's processing is (`_processing_kind`) is read from the same
map through the unit's Database (`session.database.events`): the unit writes that job as it
commits, deep under every use case, so the Database, built with the engine, carries it there.

A job whose attempt failed is split on its next one, one job per event (`split`): a consumer failing
on one event (or a batch killed for its time) then holds back only that event, which ends dead on
its own for an admin to retry. An event no job names is given one by a sweep (recovery.py).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.platform.db import UnitOfWork, UTCDateTime
from app.platform.events.consumer_map import EventHandlers
from app.platform.events.models import DomainEvent
from app.platform.scheduling import service as scheduling
from app.platform.scheduling.memo import Memo, takes_memo

PROCESS_KIND = "events.process"
# The processing of a transaction whose events no new lead waits on (PROCESSED_LATER): on a queue
# other than the realtime one (app/handlers.py).
PROCESS_LATER_KIND = "events.process_later"
PROCESS_KINDS = (PROCESS_KIND, PROCESS_LATER_KIND)


def _processing_kind(event_map: EventHandlers, events: list[DomainEvent]) -> str:
    later = event_map.all_later(event.type for event in events)
    return PROCESS_LATER_KIND if later else PROCESS_KIND


def processing_job(event_map: EventHandlers, events: list[DomainEvent]) -> scheduling.Job:
    """A transaction's one processing job, naming all its events (the first names the job), which
    its unit writes with its other jobs as it commits (app/platform/db/uow.py): created once with
    its whole payload, not inserted with the first event and rewritten with every later one.
    `event_map`: the engine's, which says which events are processed later."""
    first = events[0]
    return scheduling.Job(
        kind=_processing_kind(event_map, events),
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


def process_events(
    *, session: UnitOfWork, job, now: datetime, event_handlers: EventHandlers, memo: Memo
) -> None:
    """The job handler: run each unprocessed event's consumers, then mark it processed (all or nothing).
    `event_handlers`: the engine's event map, bound to this handler by app/bootstrap.py. Each
    consumer is handed the event as its type (`Delivered`, read from the row by the map's
    catalogue); a row of a type name it does not know (`UnreadableEvent`) fails the attempt, so
    the event is retried, then ends dead on its own, never marked processed unseen. A consumer that
    names `memo` is also handed the transaction's (app/platform/scheduling/memo.py, from the
    runner): what it read for one event, it keeps there for the others of the job and of the
    drainer's batch.

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
    for row in unprocessed:  # one query for the transaction's events, in the order they were written
        event = event_handlers.catalogue.deliver(row)  # UnreadableEvent: this attempt fails, says why
        for consumer in event_handlers.consumers_of(event.type):
            if takes_memo(consumer):
                consumer(session=session, event=event, now=now, memo=memo)
            else:
                consumer(session=session, event=event, now=now)
        processed.append(event)
    if processed:  # one UPDATE for them all, in the consumers' transaction
        for consumer in event_handlers.after_events:
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
            kind=_processing_kind(session.database.events, [event]),
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
