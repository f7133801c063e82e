"""Helpers for the analytics tests: the reports are fed by the outbox, so process it first."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.domains.analytics import monthly
from app.platform import clock
from app.platform.events.consumers import PROCESS_KINDS
from app.platform.events.models import DomainEvent
from app.platform.scheduling import runner as scheduling


def process_outbox(app, db) -> int:
    """Run the open events.process jobs as a worker's delivery does (the ledger's own drain), then
    the monthly recounts they queued, once due (`background_delay_seconds` later); returns how
    many events jobs ran."""
    later = timedelta(seconds=app.config["SETTINGS"].background_delay_seconds + 1)
    with app.app_context():
        ran = sum(scheduling.drain(db=db, kind=kind, clock=clock.now) for kind in PROCESS_KINDS)
        scheduling.drain(db=db, kind=monthly.RECOUNT_KIND, clock=lambda: clock.now() + later)
    return ran


def unprocessed_events(db) -> int:
    with db.unit_of_work() as session:
        return session.scalar(
            sa.select(sa.func.count()).select_from(DomainEvent).where(DomainEvent.processed_at.is_(None))
        )
