"""The ledger's periodic sweeps, run by beat (beat_schedule.py) through thin tasks in workers/.

Each sweep claims rows by compare-and-set before it publishes them, so two beats or two overlapping
runs never send a row twice in one round; and a second delivery is a no-op anyway (run_job's claim).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.scheduling import queries
from app.scheduling.dispatch import publish_claimed
from app.scheduling.models import DISPATCHED, FINISHED, PENDING, ScheduledJob

log = logging.getLogger(__name__)

MAX_BATCHES = 100  # per sweep run; the next tick carries on


def _claim(session: Session, *, where, values: dict, limit: int):
    """UPDATE ... WHERE id IN (SELECT id ... ORDER BY due_at LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING."""
    pick = sa.select(ScheduledJob.id).where(*where).order_by(ScheduledJob.due_at).limit(limit)
    pick = queries.skipping_locked(session, pick)
    stmt = (
        sa.update(ScheduledJob)
        .where(ScheduledJob.id.in_(pick), *where)
        .values(**values)
        .returning(
            ScheduledJob.id,
            ScheduledJob.queue,
            ScheduledJob.due_at,
            ScheduledJob.kind,
            ScheduledJob.subject_type,
            ScheduledJob.subject_id,
        )
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).all()


def claim_due(*, session: Session, now: datetime, until: datetime, limit: int):
    """Pending rows due by `until`, marked dispatched at `now` (the caller publishes after commit)."""
    return _claim(
        session,
        where=[ScheduledJob.status == PENDING, ScheduledJob.due_at <= until],
        values={"status": DISPATCHED, "dispatched_at": now},
        limit=limit,
    )


def claim_stale(*, session: Session, now: datetime, grace: timedelta, limit: int):
    """Dispatched rows not done `grace` after due and after their last dispatch; dispatched_at bumped."""
    cutoff = now - grace
    return _claim(
        session,
        where=[
            ScheduledJob.status == DISPATCHED,
            ScheduledJob.due_at <= cutoff,
            ScheduledJob.dispatched_at <= cutoff,
        ],
        values={"dispatched_at": now},
        limit=limit,
    )


def promote_due(*, db, now: datetime) -> int:
    """Publish pending rows that come due within the horizon; returns how many were published.

    `db`: the app's Database (its settings and dispatcher with it), as for every sweep here."""
    until = now + timedelta(seconds=db.settings.schedule_horizon_seconds)
    return _sweep(
        db, lambda session, limit: claim_due(session=session, now=now, until=until, limit=limit), now
    )


def redispatch_stale(*, db, now: datetime) -> int:
    """Publish again the dispatched rows the broker lost (FLUSHALL, a worker killed with kill -9)."""
    grace = timedelta(seconds=db.settings.redispatch_grace_seconds)
    count = _sweep(
        db, lambda session, limit: claim_stale(session=session, now=now, grace=grace, limit=limit), now
    )
    if count:
        log.warning("re-dispatched %d job(s) still not done %s after due", count, grace)
    return count


def _sweep(db, claim, now: datetime) -> int:
    dispatcher, limit, total = db.dispatcher, db.settings.sweep_batch_size, 0
    for _ in range(MAX_BATCHES):
        with db.unit_of_work() as session:
            rows = claim(session, limit)
        if not publish_claimed(db=db, dispatcher=dispatcher, rows=rows, now=now):
            break  # the broker is down: the rows went back to pending; the next tick tries again
        total += len(rows)
        if len(rows) < limit:
            break
    return total


def purge_done(*, db, now: datetime) -> int:
    """Delete done and cancelled rows both due and finished more than purge_done_after_days ago."""
    cutoff = now - timedelta(days=db.settings.purge_done_after_days)
    limit, total = db.settings.sweep_batch_size, 0
    where = [
        ScheduledJob.status.in_(FINISHED),
        ScheduledJob.due_at < cutoff,
        ScheduledJob.finished_at < cutoff,
    ]
    while True:
        with db.unit_of_work() as session:
            pick = sa.select(ScheduledJob.id).where(*where).limit(limit)
            deleted = session.execute(
                sa.delete(ScheduledJob)
                .where(ScheduledJob.id.in_(pick))
                .execution_options(synchronize_session=False)
            ).rowcount
        total += deleted
        if deleted < limit:
            return total
