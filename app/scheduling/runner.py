"""Running the ledger's rows: a delivery counts an attempt (committed on its own), claims the row
in the transaction that runs its handler, and records a failure with backoff; a drainer runs the
due rows of its kind one after the other."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import UTCDateTime, loaded
from app.scheduling import queries, registry
from app.scheduling.dispatch import Message, subject_of
from app.scheduling.models import DEAD, DISPATCHED, DONE, FAILED, OPEN, PENDING, ScheduledJob
from app.scheduling.service import publish_after_commit, wake_key
from app.telemetry import logs, metrics, tracing

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


# --- running --------------------------------------------------------------------------------------


class _HandlerFailed(Exception):
    def __init__(self, job_id: int, attempts: int, error: BaseException, kind: str):
        super().__init__(str(error))
        self.job_id = job_id
        self.attempts = attempts
        self.error = error
        self.kind = kind


def run_job(*, db, job_id: int, now: datetime, clock: Callable[[], datetime] | None = None) -> str:
    """Claim the row and run its handler: effect and `done` commit together. Returns what happened.

    `db` is the app's Database (its settings, dispatcher and Redis with it). With a `clock` (a
    worker's delivery), a row of a draining kind then takes every other due row of its kind, each
    claimed and run in a transaction of its own, until none is left.
    """
    outcome, kind = _run_one(db=db, job_id=job_id, now=now)
    if clock is not None and kind is not None and kind.drain:
        drain(db=db, kind=kind.name, clock=clock)
    return outcome


def drain(*, db, kind: str, clock: Callable[[], datetime]) -> int:
    """Run the due rows of `kind`, oldest first, until none is left; returns how many ran.

    Each row is claimed by the same compare-and-set as a delivery, taking the oldest unlocked due
    row (two drainers never wait on, or run, the same row), and runs in its own transaction. When
    none is left the wake-up flag is cleared and one more row is looked for (see `_wake`): a row
    committed after that finds the flag clear and wakes a worker of its own.
    """
    redis, ran = db.redis, 0
    while True:
        outcome, _ = _run_one(db=db, now=clock(), next_of_kind=kind)
        if outcome is None:
            try:
                redis.delete(wake_key(kind))
            except Exception:
                log.exception("could not clear the wake-up flag of %s; new rows wait for its expiry", kind)
            outcome, _ = _run_one(db=db, now=clock(), next_of_kind=kind)
            if outcome is None:
                return ran
        ran += outcome == RAN


def _run_one(
    *, db, now: datetime, job_id: int | None = None, next_of_kind: str | None = None
) -> tuple[str | None, registry.JobKind | None]:
    """Claim and run one row, `job_id` or else the oldest due row of `next_of_kind`: what happened
    (None: no due row of the kind), and the row's kind (None: no such row). Its log lines carry the
    job's ids; its outcome, duration and lateness are counted (app/telemetry/metrics.py).

    Two transactions: the attempt is counted and committed first (`count_attempt`), then the row is
    claimed for that attempt and run with its effect. A process that dies in the handler has spent
    an attempt all the same, so a job that kills its worker ends dead after max_attempts.
    """
    settings, started, due_at = db.settings, time.perf_counter(), None
    with logs.scope(job_id=job_id):
        counted = count_attempt(db=db, job_id=job_id, next_of_kind=next_of_kind, now=now, settings=settings)
        if counted is None:
            if job_id is None:
                return None, None
            with db.unit_of_work() as session:
                outcome, kind = _not_claimed(session=session, job_id=job_id, now=now, settings=settings)
        elif counted.status == DEAD:
            log.error("job %s (%s) is dead: %s", counted.id, counted.kind, queries.WORKER_LOST)
            outcome, kind = GAVE_UP, counted.kind
        else:
            try:
                with db.unit_of_work() as session:
                    outcome, kind, due_at = _claim_and_run(db=db, session=session, counted=counted, now=now)
            except _HandlerFailed as failed:
                log.warning(
                    "job %s failed (attempt %d)", failed.job_id, failed.attempts, exc_info=failed.error
                )
                with db.unit_of_work() as session:
                    outcome = _record_failure(
                        session=session,
                        job_id=failed.job_id,
                        attempt=failed.attempts,
                        error=failed.error,
                        now=now,
                        settings=settings,
                    )
                kind = failed.kind
    if kind is not None and outcome is not None and settings.metrics_token:  # else no one can scrape them
        metrics.job_ran(
            kind=kind, outcome=outcome, due_at=due_at, now=now, seconds=time.perf_counter() - started
        )
    return outcome, None if kind is None else registry.kind_of(kind)


def count_attempt(*, db, now: datetime, settings, job_id: int | None = None, next_of_kind: str | None = None):
    """Spend an attempt of the row (`job_id`, or the oldest due row of `next_of_kind` no one holds),
    committed before its handler runs; returns (id, kind, attempts, status) or None if none was due,
    open and free. `status` is dead when the row had no attempt left: it is not to be run.

    One statement, committed on its own: autocommit on PostgreSQL; SQLite's BEGIN IMMEDIATE
    transaction (app/db/engine.py) serialises it with every other writer.
    """
    params = {
        "until": now + timedelta(seconds=settings.job_early_tolerance_seconds),
        "now": now,
        "b_max_attempts": settings.job_max_attempts,
        "b_lease_cutoff": now - timedelta(seconds=settings.redispatch_grace_seconds),
    }
    if job_id is not None:
        params["job_id"] = job_id
    else:
        params["of_kind"] = next_of_kind
    rows = queries.run_alone(db, queries.count_statement(db, by_id=job_id is not None), params)
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
        _JOBS.c.id == sa.bindparam("job_id"), queries.IS_OPEN, _JOBS.c.attempts == sa.bindparam("b_attempts")
    )
    .values(status=DONE, finished_at=sa.bindparam("now", type_=UTCDateTime()))
    .returning(*_JOBS.c)
)


def claim(*, session: Session, now: datetime, job_id: int, attempts: int) -> ScheduledJob | None:
    """Take the row for this transaction, already marked done: it commits only with the handler's effect.

    `attempts` is the count `count_attempt` committed for this delivery. The conditional UPDATE is a
    compare-and-set: PostgreSQL re-checks it on the row as it is once a holder's lock is released;
    SQLite serialises every writer (BEGIN IMMEDIATE, app/db/engine.py).
    """
    row = session.connection().execute(_CLAIM, {"job_id": job_id, "b_attempts": attempts, "now": now}).first()
    if row is None:
        return None
    # The returned row becomes the session's persistent object, as if loaded: no second SELECT.
    return loaded(session, ScheduledJob, row)


def _claim_and_run(
    *, db, session: Session, counted, now: datetime
) -> tuple[str, str | None, datetime | None]:
    """Claim the counted attempt and run the handler: what happened, the row's kind, and the due time
    of a row that ran."""
    job = claim(session=session, job_id=counted.id, attempts=counted.attempts, now=now)
    if job is None:
        return SKIPPED, counted.kind, None  # a concurrent delivery counted after this one: it runs the row
    logs.bind(
        job_id=job.id,
        job_kind=job.kind,
        clinic_id=job.clinic_id,
        lead_id=job.subject_id if job.subject_type == "lead" else None,
    )
    kind = registry.kind_of(job.kind)
    if kind is None:
        job.status = FAILED
        job.last_error = f"no handler is registered for job kind {job.kind!r} in this process"
        log.error("job %s: %s", job.id, job.last_error)
        return NO_HANDLER, job.kind, None
    with tracing.job_span(kind=job.kind, job_id=job.id, traceparent=job.trace_parent):
        try:
            # A handler that opens units of work of its own (a send outside the transaction) is
            # given the Database; the others need only the session.
            wiring = {"db": db} if kind.takes_db else {}
            kind.handler(session=session, job=job, now=now, **wiring)
            session.flush()  # the handler's own constraint violations count as its failure
        except Exception as exc:
            raise _HandlerFailed(job.id, job.attempts, exc, job.kind) from exc
    return RAN, job.kind, job.due_at


def _not_claimed(*, session: Session, job_id: int, now: datetime, settings) -> tuple[str, str | None]:
    """Why a delivery found nothing to claim: final or unknown, busy (a concurrent run), or early."""
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
        publish_after_commit(session, [_message(job)])
    return EARLY, job.kind


def _message(job: ScheduledJob) -> Message:
    return Message(job.id, job.queue, job.due_at, job.kind, subject_of(job.subject_type, job.subject_id))


def _record_failure(
    *, session: Session, job_id: int, attempt: int, error: BaseException, now: datetime, settings
) -> str:
    """last_error of the (already counted) attempt; back off (base * 2**(attempts-1), +≤10% jitter)
    or, its attempts spent, dead."""
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
    if job.attempts >= (job.max_attempts or settings.job_max_attempts):
        job.status, job.finished_at = DEAD, now
        log.error("job %s (%s) failed for good after %d attempts: %s", job.id, job.kind, job.attempts, error)
        return GAVE_UP
    delay = settings.job_retry_base_seconds * 2 ** (job.attempts - 1)
    job.due_at = now + timedelta(seconds=delay * (1 + random.uniform(0, 0.1)))
    if job.due_at <= now + timedelta(seconds=settings.schedule_horizon_seconds):
        job.status, job.dispatched_at = DISPATCHED, now
        publish_after_commit(session, [_message(job)])
    else:
        job.status, job.dispatched_at = PENDING, None
    return RETRYING
