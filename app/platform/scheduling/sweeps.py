"""The ledger's periodic sweeps, run by beat (beat_schedule.py) through thin tasks in workers/.

Each sweep claims rows by compare-and-set before it publishes them, so two beats or two overlapping
runs never send a row twice in one round; and a second delivery is a no-op anyway (run_job's claim).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.platform.db import UnitOfWork
from app.platform.scheduling import queries
from app.platform.scheduling.dispatch import publish_claimed
from app.platform.scheduling.models import (
    DISPATCHED,
    FINISHED,
    GAVE_UP,
    PENDING,
    ScheduledJob,
    ScheduledJobKey,
)
from app.platform.scheduling.partitions import queries as partitions

log = logging.getLogger(__name__)

MAX_BATCHES = 100  # per sweep run; the next tick carries on


def claim_statement(session: UnitOfWork, *, where, values: dict, limit: int) -> sa.Update:
    """UPDATE ... WHERE (id, created_at) IN (SELECT ... ORDER BY due_at LIMIT n [FOR UPDATE SKIP
    LOCKED]) RETURNING. The pick reads the live rows' partial index; each row it names is then
    found by its primary key in its own month's partition (created_at prunes the others)."""
    pick = (
        sa.select(ScheduledJob.id, ScheduledJob.created_at)
        .where(*where)
        .order_by(ScheduledJob.due_at)
        .limit(limit)
    )
    pick = queries.skipping_locked(session, pick)
    return (
        sa.update(ScheduledJob)
        .where(sa.tuple_(ScheduledJob.id, ScheduledJob.created_at).in_(pick), *where)
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


def _claim(session: UnitOfWork, *, where, values: dict, limit: int):
    queries.without_jit(session)
    return session.execute(claim_statement(session, where=where, values=values, limit=limit)).all()


def claim_due(*, session: UnitOfWork, now: datetime, until: datetime, limit: int):
    """Pending rows due by `until` (a kind published when due: by `now`), marked dispatched at `now`
    (the caller publishes after commit)."""
    when_due = ScheduledJob.kind.in_(session.database.job_kinds.when_due_kinds())
    return _claim(
        session,
        where=[
            ScheduledJob.status == PENDING,
            ScheduledJob.due_at <= until,
            sa.or_(ScheduledJob.due_at <= now, ~when_due),
        ],
        values={"status": DISPATCHED, "dispatched_at": now},
        limit=limit,
    )


def claim_stale(*, session: UnitOfWork, now: datetime, grace: timedelta, limit: int):
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
    """Remove the done and cancelled rows both due and finished more than purge_done_after_days ago;
    returns how many. On PostgreSQL whole months go (partitions detached and dropped, never one with
    a row still open or finished within the retention), and the months ahead are created; elsewhere
    (SQLite, and PostgreSQL's DEFAULT partition) the rows are deleted in batches."""
    cutoff = now - timedelta(days=db.settings.purge_done_after_days)
    total = 0
    if partitions.is_partitioned(db):
        _create_months_ahead(db, now)
        total += _drop_final_months(db, cutoff)
    return total + _delete_finished(db, cutoff)


MONTHS_AHEAD = 2  # partitions made ahead of the current month: rows never wait for one


def _create_months_ahead(db, now: datetime) -> None:
    month = partitions.month_of(now)
    for _ in range(MONTHS_AHEAD + 1):
        try:
            if partitions.create_partition(db, month):
                log.info("created the ledger's partition %s", partitions.partition_name(month))
        except sa.exc.DBAPIError:  # its lock not granted in time (a busy ledger), a race: next run
            log.exception(
                "could not create %s yet; the next purge tries again", partitions.partition_name(month)
            )
        month = partitions.next_month(month)


def _drop_final_months(db, cutoff: datetime) -> int:
    """Drop each month entirely before the cutoff whose rows are all final and past the retention."""
    with db.engine.connect() as conn:
        months = [m for m in partitions.attached_months(conn) if partitions.next_month(m) <= cutoff]
    for month in months:
        if partitions.holds_rows_to_keep(db, month, cutoff):
            continue
        with db.engine.connect() as conn:
            gave_up = partitions.gave_up_ids(conn, partitions.partition_name(month))
        partitions.delete_finished_keys(db, month, db.settings.sweep_batch_size)
        try:
            partitions.detach_final_partition(db, month, gave_up)
        except sa.exc.DBAPIError:  # its lock not granted in time (a busy ledger): next run
            log.exception(
                "could not detach %s yet; the next purge tries again", partitions.partition_name(month)
            )
    with db.engine.connect() as conn:
        detached = partitions.detached_partitions(conn)
    dropped = 0
    for name in detached:
        count = partitions.drop_detached(db, name)
        log.info("dropped the ledger's partition %s (%d finished rows)", name, count)
        dropped += count
    return dropped


def _delete_finished(db, cutoff: datetime) -> int:
    """Delete the final-and-old done and cancelled rows of `partitions.finished_rows_table` with their
    keys, a batch per transaction."""
    table = partitions.finished_rows_table(db)
    where = [table.c.status.in_(FINISHED), table.c.due_at < cutoff, table.c.finished_at < cutoff]
    return _delete_with_keys(
        db, table, lambda session: sa.select(table.c.id, table.c.dedupe_key).where(*where)
    )


def purge_gave_up(*, db, clinic_id: int, cutoff: datetime) -> int:
    """Delete the clinic's failed and dead rows (what no run will ever finish) that gave up before
    `cutoff`, with their keys, a batch per transaction; returns how many. The done-row purge keeps
    them for an admin to retry; the clinic's retention (app/domains/privacy/retention.py) sets how long:
    their payloads and errors may describe a person."""
    table = ScheduledJob.__table__
    gave_up_at = sa.func.coalesce(table.c.finished_at, table.c.due_at)
    where = [table.c.clinic_id == clinic_id, table.c.status.in_(GAVE_UP), gave_up_at < cutoff]
    # Locked: an admin's retry of one of them meanwhile waits, then finds it gone (404).
    return _delete_with_keys(
        db,
        table,
        lambda session: queries.skipping_locked(
            session, sa.select(table.c.id, table.c.dedupe_key).where(*where)
        ),
    )


def _delete_with_keys(db, table, pick) -> int:
    """Delete the rows `pick(session)` selects (`id`, `dedupe_key`) with their dedupe keys, a batch
    per transaction, until a batch comes back short; returns how many."""
    keys, limit, total = ScheduledJobKey.__table__, db.settings.sweep_batch_size, 0
    while True:
        with db.unit_of_work() as session:
            rows = session.execute(pick(session).limit(limit)).all()
            if rows:
                session.execute(
                    sa.delete(keys).where(
                        sa.tuple_(keys.c.dedupe_key, keys.c.job_id).in_([(r.dedupe_key, r.id) for r in rows])
                    )
                )
                session.execute(sa.delete(table).where(table.c.id.in_([r.id for r in rows])))
        total += len(rows)
        if len(rows) < limit:
            return total
