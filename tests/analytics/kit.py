"""Helpers for the analytics tests: the reports are fed by the outbox, so process it first."""

from __future__ import annotations

import sqlalchemy as sa

from app import clock
from app.events.models import DomainEvent
from app.scheduling import service as scheduling


def process_outbox(app, db) -> int:
    """Run the open events.process jobs as a worker's delivery does (the ledger's own drain)."""
    with app.app_context():
        return scheduling.drain(db=db, kind="events.process", clock=clock.now)


def unprocessed_events(db) -> int:
    with db.unit_of_work() as session:
        return session.scalar(
            sa.select(sa.func.count()).select_from(DomainEvent).where(DomainEvent.processed_at.is_(None))
        )
