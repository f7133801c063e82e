"""The events no processing job will take: found by a beat sweep and given a job of their own.

Every committed event has a processing job, written in its transaction (service.emit). This sweep
is the guarantee that it stays so: an event still unprocessed a grace after it occurred that no
open or given-up (dead, failed: an admin's to retry) processing job names gets one
(`consumers.schedule_alone`), whatever lost the first (a row purged or cancelled, a hand-edited
ledger, a bug).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.platform.db import UnitOfWork
from app.platform.events import consumers
from app.platform.events.models import DomainEvent
from app.platform.scheduling.models import GAVE_UP, OPEN, ScheduledJob

log = logging.getLogger(__name__)

MAX_PAGES = 10  # pages of `limit` events a run looks through; the next run carries on


def requeue_unprocessed(*, session: UnitOfWork, now: datetime, grace: timedelta, limit: int) -> int:
    """Give a processing job to each event unprocessed `grace` after it occurred that no open or
    given-up processing job names; returns how many it gave one."""
    requeued, after_id = 0, 0
    for _ in range(MAX_PAGES):
        stale = list(
            session.scalars(
                sa.select(DomainEvent)
                .where(
                    DomainEvent.processed_at.is_(None),
                    DomainEvent.id > after_id,
                    DomainEvent.occurred_at < now - grace,
                )
                .order_by(DomainEvent.id)
                .limit(limit)
            )
        )
        if not stale:
            break
        named = _named_by_jobs(session, since=min(event.occurred_at for event in stale) - grace)
        for event in stale:
            if event.id not in named:
                consumers.schedule_alone(session=session, event=event, now=now)
                requeued += 1
        after_id = stale[-1].id
        if len(stale) < limit:
            break
    if requeued:
        log.warning("%d unprocessed event(s) had no processing job; each was given one", requeued)
    return requeued


def _named_by_jobs(session: UnitOfWork, *, since: datetime) -> set[int]:
    """The events named by the processing jobs written since `since` that are open or given up (a
    job is written with, or after, the events it names)."""
    payloads = session.scalars(
        sa.select(ScheduledJob.payload).where(
            ScheduledJob.kind.in_(consumers.PROCESS_KINDS),
            ScheduledJob.status.in_([*OPEN, *GAVE_UP]),
            ScheduledJob.created_at >= since,
        )
    )
    return {event_id for payload in payloads for event_id in (payload or {}).get("event_ids", ())}
