"""Consumers receive typed events (issue 61 item 2): the processing hands each consumer, and the
consumers run once after them, the event as its type in its row's envelope (`Delivered`), read
from the outbox row by the engine's catalogue; a row written before the types (or by another
version) is read all the same; a row of a type name the engine does not know fails its
processing instead of being marked processed unseen."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.domains.leads.events import LeadUpdated
from app.domains.pipeline.events import LeadStale
from app.handlers import EVENTS
from app.platform import clock
from app.platform.db import new_row
from app.platform.events import consumers
from app.platform.events import service as events
from app.platform.events.consumer_map import EventHandlers
from app.platform.events.models import DomainEvent
from app.platform.events.types import Delivered, UnreadableEvent
from app.platform.scheduling.memo import Memo
from app.platform.scheduling.models import ScheduledJob


class Recorder:
    """A consumer (and an after-events consumer) that keeps what it was handed."""

    def __init__(self):
        self.events, self.batches = [], []

    def consume(self, *, session, event, now) -> None:
        self.events.append(event)

    def after(self, *, session, events, now) -> None:
        self.batches.append(list(events))


def _handlers(recorder: Recorder, *names: str) -> EventHandlers:
    return EventHandlers(
        {name: [recorder.consume] for name in names}, after_events=[recorder.after], catalogue=EVENTS
    )


def _processing_job(session, event_id: int) -> ScheduledJob:
    """The ledger's processing job that names the event (written as its unit committed)."""
    jobs = session.scalars(sa.select(ScheduledJob).where(ScheduledJob.kind.in_(consumers.PROCESS_KINDS)))
    return next(job for job in jobs if event_id in job.payload["event_ids"])


def _process(db, event_id: int, handlers: EventHandlers) -> None:
    with db.unit_of_work() as session:
        job = _processing_job(session, event_id)
        consumers.process_events(
            session=session, job=job, now=clock.now(), event_handlers=handlers, memo=Memo()
        )


def _processed_at(db, event_id: int):
    with db.unit_of_work() as session:
        return session.get(DomainEvent, event_id).processed_at


def _write_row(db, clinic_id: int, type_name: str, payload: dict) -> int:
    """A row as an earlier release wrote it, straight into the outbox, with its processing job."""
    with db.unit_of_work() as session:
        row = new_row(
            DomainEvent,
            clinic_id=clinic_id,
            type=type_name,
            subject_type="lead",
            subject_id=payload.get("lead_id", 1),
            payload=payload,
            occurred_at=clock.now(),
            attempts=0,
        )
        session.add(row)
        session.flush()
        session.schedule(consumers.processing_job(session.database.events, [row]))
        return row.id


def test_a_consumer_is_handed_the_event_as_its_type_in_its_rows_envelope(db, tenant):
    with db.unit_of_work() as session:
        row = events.emit(
            session=session,
            event=LeadUpdated(lead_id=7, changed=["priority"], priority="HIGH", by="user:1"),
            subject=events.Subject(tenant.id, "lead", 7),
            now=clock.now(),
            automation=False,
        )
        session.flush()
        event_id, occurred_at = row.id, row.occurred_at
    recorder = Recorder()
    _process(db, event_id, _handlers(recorder, LeadUpdated.NAME))
    [event] = recorder.events
    assert isinstance(event, Delivered) and isinstance(event.data, LeadUpdated)
    assert (event.id, event.clinic_id, event.subject_type, event.subject_id) == (
        event_id,
        tenant.id,
        "lead",
        7,
    )
    assert event.occurred_at == occurred_at and event.type == "lead.updated"
    assert (event.data.lead_id, event.data.changed, event.data.priority) == (7, ["priority"], "HIGH")
    assert event.data.previous_priority is None  # an optional field left out of the payload
    # The envelope's flag, stored among the fields: read as the envelope's, kept in the stored dict.
    assert event.automation is False
    assert event.payload() == {
        "lead_id": 7,
        "changed": ["priority"],
        "priority": "HIGH",
        "by": "user:1",
        "automation": False,
    }
    assert recorder.batches == [[event]]  # the after-events consumers get the same typed events
    assert _processed_at(db, event_id) is not None


def test_a_row_written_before_the_types_is_delivered_as_its_type_with_its_stored_fields(db, tenant):
    # An extra key a type no longer has, an optional field absent, and (another version's row) a
    # field without a default absent: read as its type, the lacking field None, as payload.get did.
    old_update = {"lead_id": 4, "changed": ["status"], "source_system": "v1"}
    old_stale = {"lead_id": 4, "stage": "contacted", "quiet_days": 9}
    update_id = _write_row(db, tenant.id, LeadUpdated.NAME, old_update)
    stale_id = _write_row(db, tenant.id, LeadStale.NAME, old_stale)
    recorder = Recorder()
    handlers = _handlers(recorder, LeadUpdated.NAME, LeadStale.NAME)
    _process(db, update_id, handlers)
    _process(db, stale_id, handlers)
    update, stale = recorder.events
    assert isinstance(update.data, LeadUpdated) and update.data.changed == ["status"]
    assert update.data.priority is None and update.automation is True
    assert update.payload() == old_update  # the rules and the webhooks read it as stored
    assert isinstance(stale.data, LeadStale) and stale.data.quiet_days == 9 and stale.data.kind is None
    assert _processed_at(db, update_id) is not None and _processed_at(db, stale_id) is not None


def test_a_row_of_a_type_name_the_engine_does_not_know_fails_its_processing_and_stays_unprocessed(db, tenant):
    event_id = _write_row(db, tenant.id, "lead.renamed_long_ago", {"lead_id": 4})
    recorder = Recorder()
    with pytest.raises(UnreadableEvent, match=r"lead\.renamed_long_ago"):
        _process(db, event_id, _handlers(recorder, "lead.renamed_long_ago"))
    assert recorder.events == [] and recorder.batches == []
    assert _processed_at(db, event_id) is None  # retried by the ledger, then dead for an admin


def test_the_engine_reads_back_its_plugins_event_types_too(app):
    from app.bootstrap import wiring_of
    from tests.reliability.handlers import TestEvent

    catalogue = wiring_of(app).events.catalogue
    assert catalogue.types[TestEvent.NAME] is TestEvent
    assert set(EVENTS.types.items()) <= set(catalogue.types.items())
