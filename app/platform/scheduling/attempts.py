"""One delivery's attempt at a ledger row: counted (committed on its own), claimed in the transaction
that runs its handler, and, on failure, recorded with backoff; why a delivery found nothing to claim."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.platform.db import UnitOfWork, UTCDateTime, is_unavailable, loaded
from app.platform.scheduling import claim_queries, queries
from app.platform.scheduling.models import DEAD, DISPATCHED, DONE, OPEN, PENDING, ScheduledJob
from app.platform.scheduling.service import Dispatched, publish_after_commit

log = logging.getLogger(__name__)
_JOBS = ScheduledJob.__table__


_MAX_ERROR = 4000


# What run_job did with a delivery.
RAN = "done"  # the handler ran and its effect committed with the row's `done`


SKIPPED = "skipped"  # not claimable: already final, unknown, or a concurrent delivery holds it


EARLY = "early"  # delivered before due (clock skew, a stale message): left for its own time


RETRYING = "retrying"  # the handler failed; rescheduled with backoff


GAVE_UP = "dead"  # max attempts reached: the handler failed or its worker died each time


NO_HANDLER = "failed"  # no handler is registered for the kind in this process


YIELDED = "yielded"  # bulk work stepped aside while the realtime path was behind: sent again shortly


def count_params(now: datetime, settings) -> dict:
    """What every attempt-counting statement (claim_queries) binds: due by now within the early
    tolerance, the default attempts, and the redispatch grace after which an attempt is lost."""
    return {
        "until": now + timedelta(seconds=settings.job_early_tolerance_seconds),
        "now": now,
        "b_max_attempts": settings.job_max_attempts,
        "b_lease_cutoff": now - timedelta(seconds=settings.redispatch_grace_seconds),
    }


def count_due_batch(*, db, kind: str, limit: int, now: datetime) -> list:
    """Spend the first attempt of up to `limit` of the kind's oldest due rows that no one holds, in
    one statement committed on its own (as `count_attempt`); their (id, kind, attempts, status)."""
    settings = db.settings
    params = {"of_kind": kind, "b_limit": limit, **count_params(now, settings)}
    rows = claim_queries.run_alone(db, claim_queries.count_kind_batch_statement(db), params)
    return sorted(rows, key=lambda row: row.id)


def count_attempt(*, db, now: datetime, settings, job_id: int | None = None, next_of_kind: str | None = None):
    """Spend an attempt of the row (`job_id`, or the oldest due row of `next_of_kind` no one holds),
    committed before its handler runs; returns (id, kind, attempts, status) or None if none was due,
    open and free. `status` is dead when the row had no attempt left: it is not to be run.

    One statement, committed on its own: autocommit on PostgreSQL; SQLite's BEGIN IMMEDIATE
    transaction (app/platform/db/engine.py) serialises it with every other writer.
    """
    params = count_params(now, settings)
    if job_id is not None:
        params["job_id"] = job_id
    else:
        params["of_kind"] = next_of_kind
    rows = claim_queries.run_alone(db, claim_queries.count_statement(db, by_id=job_id is not None), params)
    return rows[0] if rows else None


# The claim of a counted attempt: the row becomes done in the transaction that runs its handler,
# only if it is still open and still at this attempt (a delivery that counted a later attempt, once
# this one's lease ran out, owns the row now). It waits for a row lock rather than skipping it: the
# attempt in flight keeps every drainer and duplicate delivery off the row, so a claim that gave up
# on a lock held for a moment by a sweep, a dispatch or a drainer's scan would leave the row to the
# redispatch sweep, a grace period late. The only long holder is a later attempt's handler, after
# which this claim finds the row done.
_CLAIM = (
    sa.update(_JOBS)
    .where(
        _JOBS.c.id == sa.bindparam("job_id"),
        claim_queries.IS_OPEN,
        _JOBS.c.attempts == sa.bindparam("b_attempts"),
    )
    .values(status=DONE, finished_at=sa.bindparam("now", type_=UTCDateTime()))
    .returning(*_JOBS.c)
)


def claim(*, session: UnitOfWork, now: datetime, job_id: int, attempts: int) -> ScheduledJob | None:
    """Take the row for this transaction, already marked done: it commits only with the handler's effect.

    `attempts` is the count `count_attempt` committed for this delivery. The conditional UPDATE is a
    compare-and-set: PostgreSQL re-checks it on the row as it is once a holder's lock is released;
    SQLite serialises every writer (BEGIN IMMEDIATE, app/platform/db/engine.py).
    """
    row = session.connection().execute(_CLAIM, {"job_id": job_id, "b_attempts": attempts, "now": now}).first()
    if row is None:
        return None
    # The returned row becomes the session's persistent object, as if loaded: no second SELECT.
    return loaded(session, ScheduledJob, row)


def not_claimed(
    *, session: UnitOfWork, job_id: int, now: datetime, settings, offset
) -> tuple[str, str | None]:
    """Why a delivery found nothing to claim: final or unknown, busy, or early. An early one goes back
    with its eta on this host's clock (`offset` ahead of the database's), which its broker eta fires by."""
    job = session.get(ScheduledJob, job_id)
    if job is None:
        return SKIPPED, None
    if job.status not in OPEN:
        return SKIPPED, job.kind
    if job.due_at <= now + timedelta(seconds=settings.job_early_tolerance_seconds):
        return SKIPPED, job.kind  # due, but a concurrent delivery holds it (PostgreSQL's SKIP LOCKED)
    # Never run early. A dispatched row due within the horizon goes back on the broker with its eta;
    # anything else waits for the sweeps (promote for pending, redispatch after the grace).
    if job.status == DISPATCHED and job.due_at <= now + timedelta(seconds=settings.schedule_horizon_seconds):
        publish_after_commit(session, [Dispatched.of(job, eta_offset=offset)], now)
    return EARLY, job.kind


def record_failure(
    *, session: UnitOfWork, job_id: int, attempt: int, error: BaseException, now: datetime, settings
) -> str:
    """last_error of the (already counted) attempt; back off (base * 2**(attempts-1), +≤10% jitter)
    or, its attempts spent, dead. The database's failure (unavailable) gives the attempt back."""
    stmt = sa.select(ScheduledJob).where(
        ScheduledJob.id == job_id,
        ScheduledJob.status.in_(OPEN),
        ScheduledJob.attempts == attempt,  # a concurrent delivery counted (and runs) a later attempt
    )
    job = session.scalars(queries.for_update(session, stmt)).first()
    if job is None:
        return SKIPPED
    job.last_error = f"{type(error).__name__}: {error}"[:_MAX_ERROR]
    job.started_at = None  # this attempt is over: the next delivery may count one
    if is_unavailable(error):  # an outage brings no job nearer to dead
        job.attempts -= 1
    elif job.attempts >= (job.max_attempts or settings.job_max_attempts):
        job.status, job.finished_at = DEAD, now
        log.error("job %s (%s) failed for good after %d attempts: %s", job.id, job.kind, job.attempts, error)
        return GAVE_UP
    delay = settings.job_retry_base_seconds * 2 ** (job.attempts - 1)
    job.due_at = now + timedelta(seconds=delay * (1 + random.uniform(0, 0.1)))
    if job.due_at <= session.database.job_kinds.published_by(job.kind, now, settings):
        job.status, job.dispatched_at = DISPATCHED, now
        publish_after_commit(session, [job], now)
    else:
        job.status, job.dispatched_at = PENDING, None
    return RETRYING
