"""Running the ledger's rows: a delivery counts an attempt (committed on its own), claims the row
in the transaction that runs its handler, and records a failure with backoff; a drainer runs the
due rows of its kind one after the other; a batch's delivery counts and claims its rows together
and runs them in one transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.platform.db import UnitOfWork, is_unavailable, loaded
from app.platform.scheduling import claim_queries, registry, turns, wakeups
from app.platform.scheduling.attempts import (
    GAVE_UP,
    NO_HANDLER,
    RAN,
    SKIPPED,
    YIELDED,
    claim,
    count_attempt,
    count_due_batch,
    not_claimed,
    record_failure,
)
from app.platform.scheduling.memo import Memo, takes_memo
from app.platform.scheduling.models import DEAD, FAILED, ScheduledJob
from app.platform.scheduling.service import release_wake_flag
from app.platform.telemetry import logs, metrics, tracing

log = logging.getLogger(__name__)
# A drain under a steady arrival of rows would never end, and a worker told to stop (a deploy's
# SIGTERM: a warm shutdown) waits for the task it runs: a drain hands the rest on after this long.
DRAIN_SECONDS = 5.0


class _HandlerFailed(Exception):
    def __init__(self, job_id: int, attempts: int, error: BaseException, kind: str):
        super().__init__(str(error))
        self.job_id, self.attempts, self.error, self.kind = job_id, attempts, error, kind


@dataclass(frozen=True)
class Delivery:
    """How a worker's message delivered a row (`run_job`); the default is a plain call.

    With a `clock` (the database's), a row of a draining kind then takes every other due row of its
    kind, each claimed and run in a transaction of its own, until none is left. `batch`: the
    message's other rows (dispatch.messages_for), run together with it (`run_batch`). `background`:
    delivered on a queue other than realtime, where a kind registered with `yields` steps aside
    while the realtime path is behind (wakeups.py). `host_offset`: this host's clock less the
    database's (`not_claimed`). `queue`: the queue it came from (a turn on a laned one: turns.py)."""

    clock: Callable[[], datetime] | None = None
    batch: Sequence[int] = ()
    background: bool = False
    host_offset: timedelta = timedelta(0)
    queue: str | None = None


PLAIN_CALL = Delivery()


def run_job(*, db, job_id: int, now: datetime, delivery: Delivery = PLAIN_CALL) -> str:
    """Claim the row and run its handler: effect and `done` commit together. Returns what happened
    (to `job_id`, when its `delivery` brought a batch).

    `db` is the app's Database (its settings, dispatcher and Redis with it); `now` is the database's
    time; `delivery`: how a worker's message brought the row (`Delivery`)."""
    batch = delivery.batch
    if delivery.background and wakeups.yielded_to_realtime(db=db, job_id=job_id, now=now, batch=batch):
        return YIELDED
    if batch:
        return run_batch(db=db, job_ids=[job_id, *batch], now=now)[job_id]
    if turns.is_turn(db=db, job_id=job_id, now=now, queue=delivery.queue):  # else, or none due: this row
        with turns.next_turn(db=db, queue=delivery.queue, now=now) as counted:
            if counted is not None:
                return _run_counted(db=db, counted=counted, now=now, started=time.perf_counter())
    outcome, kind = _run_one(db=db, job_id=job_id, now=now, offset=delivery.host_offset)
    if delivery.clock is not None and kind is not None and kind.drain:
        drain(db=db, kind=kind.name, clock=delivery.clock)
    return outcome


def drain(*, db, kind: str, clock: Callable[[], datetime]) -> int:
    """Run the due rows of `kind`, oldest first, until none is left or its time is up; returns how
    many ran.

    Each row is claimed by the same compare-and-set as a delivery, taking the oldest unlocked due
    row (two drainers never wait on, or run, the same row), and runs in its own transaction. When
    none is left the wake-up flag is cleared, if the wake-up it stands for is due, and one more row
    is looked for (see `_wake`): a row committed after that finds the flag clear and wakes a worker
    of its own. A flag whose wake-up is due later is left: that wake-up looks for them. After
    DRAIN_SECONDS the rest goes to a new delivery (`wakeups.hand_back`), the flag left out for it.
    """
    ran, spec = 0, db.job_kinds.kind_of(kind)
    ends = time.monotonic() + DRAIN_SECONDS
    while True:
        if time.monotonic() > ends:
            wakeups.hand_back(db=db, kind=kind, now=clock())
            return ran
        done = _run_next(db=db, spec=spec, now=clock(), retried=False)
        if done is None:
            if not _release_wake_flag(db, kind, now=clock()):
                return ran  # a wake-up due later is out: it looks for the rows committed meanwhile
            done = _run_next(db=db, spec=spec, now=clock(), retried=True)
            if done is None:
                if spec.due_later:  # else each of its rows woke a worker or was taken: no look
                    wakeups.wake_for_later(db=db, kind=kind, now=clock())
                return ran
        ran += done


def _release_wake_flag(db, kind: str, *, now: datetime) -> bool:
    try:
        return release_wake_flag(db.redis, kind, now=now, tolerance=db.settings.job_early_tolerance_seconds)
    except Exception:
        log.exception("could not clear the wake-up flag of %s; new rows wait for its expiry", kind)
        return True  # the last look all the same


def _run_next(*, db, spec: registry.JobKind, now: datetime, retried: bool) -> int | None:
    """Run a drainer's next due rows of the kind: how many ran (None: no due row was left).

    A kind registered with `batch` takes up to that many rows still at their first attempt, counted
    in one statement and run in one transaction (`_run_together`). The drainer's last look
    (`retried`), and any look for another kind, runs the oldest due row alone (`_run_one`), a
    retried one or not: one statement where a drain that found nothing ends, as every new lead's
    processing does when it is not behind; a row found there takes the drain on to the batches.
    """
    if spec.batch > 1 and not retried:
        counted = count_due_batch(db=db, kind=spec.name, limit=spec.batch, now=now)
        if counted:
            live = [row for row in counted if row.status != DEAD]
            outcomes = (
                _run_together(db=db, counted=live, now=now, started=time.perf_counter()) if live else {}
            )
            for row in counted:
                if row.status == DEAD:  # no attempt was left (max_attempts 0): recorded as dead
                    outcomes[row.id] = _run_counted(db=db, counted=row, now=now, started=time.perf_counter())
            return sum(outcome == RAN for outcome in outcomes.values())
        return None
    outcome, _ = _run_one(db=db, now=now, next_of_kind=spec.name)
    return None if outcome is None else int(outcome == RAN)


def _run_one(
    *, db, now: datetime, job_id: int | None = None, next_of_kind: str | None = None, offset=timedelta(0)
) -> tuple[str | None, registry.JobKind | None]:
    """Claim and run one row, `job_id` or else the oldest due row of `next_of_kind`: what happened
    (None: no due row of the kind), and the row's kind (None: no such row). Its log lines carry the
    job's ids; its outcome, duration and lateness are counted (app/platform/telemetry/metrics.py).

    Two transactions: the attempt is counted and committed first (`count_attempt`), then the row is
    claimed for that attempt and run with its effect. A process that dies in the handler has spent
    an attempt all the same, so a job that kills its worker ends dead after max_attempts.
    """
    settings, started = db.settings, time.perf_counter()
    with logs.scope(job_id=job_id):
        counted = count_attempt(db=db, job_id=job_id, next_of_kind=next_of_kind, now=now, settings=settings)
        if counted is not None:
            outcome = _run_counted(db=db, counted=counted, now=now, started=started)
            return outcome, db.job_kinds.kind_of(counted.kind)
        if job_id is None:
            return None, None
        with db.unit_of_work() as session:
            outcome, kind = not_claimed(
                session=session, job_id=job_id, now=now, settings=settings, offset=offset
            )
    if kind is not None:
        _counted_in_metrics(db, kind=kind, outcome=outcome, due_at=None, now=now, seconds=_since(started))
    return outcome, None if kind is None else db.job_kinds.kind_of(kind)


def _run_counted(*, db, counted, now: datetime, started: float) -> str:
    """Run a row whose attempt this delivery counted (`count_attempt`): claimed and run with its
    effect in a transaction of its own, its failure recorded in another; what happened."""
    due_at = None
    if counted.status == DEAD:
        log.error("job %s (%s) is dead: %s", counted.id, counted.kind, claim_queries.WORKER_LOST)
        outcome = GAVE_UP
    else:
        # A dropped connection: once more, same attempt (a run that did commit left the row done).
        for last_try in (False, True):
            try:
                with db.unit_of_work() as session:
                    outcome, due_at, send = _claim_and_run(db=db, session=session, counted=counted, now=now)
                if send is not None:  # what the handler left to do once its claim committed (a send)
                    send()
                break
            except _HandlerFailed as failed:
                if last_try or not is_unavailable(failed.error):
                    outcome = _failed(db=db, failed=failed, now=now)
                    break
            except sa.exc.DBAPIError as error:
                if last_try or not is_unavailable(error):
                    raise
    _counted_in_metrics(
        db, kind=counted.kind, outcome=outcome, due_at=due_at, now=now, seconds=_since(started)
    )
    return outcome


def _failed(*, db, failed: _HandlerFailed, now: datetime) -> str:
    """Log a handler's failure and record it (backoff or dead) in a transaction of its own."""
    log.warning("job %s failed (attempt %d)", failed.job_id, failed.attempts, exc_info=failed.error)
    with db.unit_of_work() as session:
        return record_failure(
            session=session,
            job_id=failed.job_id,
            attempt=failed.attempts,
            error=failed.error,
            now=now,
            settings=db.settings,
        )


def _since(started: float, share: int = 1) -> float:
    """Seconds since `started` (a `time.perf_counter()`); a row of a batch of `share` rows counts its
    share of the batch's time."""
    return (time.perf_counter() - started) / share


def _counted_in_metrics(
    db, *, kind: str, outcome: str, due_at: datetime | None, now: datetime, seconds: float
) -> None:
    """A delivery's outcome, lateness and duration (`seconds`, see `_since`)."""
    if db.settings.metrics_token:  # else no one can scrape them
        metrics.job_ran(kind=kind, outcome=outcome, due_at=due_at, now=now, seconds=seconds)


def _claim_and_run(
    *, db, session: UnitOfWork, counted, now: datetime
) -> tuple[str, datetime | None, Callable | None]:
    """Claim the counted attempt and run the handler: as `_run_handler`."""
    job = claim(session=session, job_id=counted.id, attempts=counted.attempts, now=now)
    if job is None:
        return SKIPPED, None, None  # a concurrent delivery counted after this one: it runs the row
    return _run_handler(db=db, session=session, job=job, now=now)


def _run_handler(
    *,
    db,
    session: UnitOfWork,
    job: ScheduledJob,
    now: datetime,
    finish: bool = True,
    memo: Memo | None = None,
) -> tuple[str, datetime | None, Callable | None]:
    """Run the claimed row's handler in the claim's transaction: what happened, the due time of a
    row that ran, and what the handler returned: a `sends_after_commit` kind's send, done once the
    claim has committed (`_run_counted`). A failure raises _HandlerFailed (the caller rolls back).
    `finish`: what the unit writes before its commit (its events and jobs: `uow.write`) is written
    here too, so that its failure is the job's; a batch (`_run_together`) does it once for all its
    rows, and hands each the batch's `memo` (memo.py), which a handler naming `memo` is given."""
    logs.bind(
        job_id=job.id,
        job_kind=job.kind,
        clinic_id=job.clinic_id,
        lead_id=job.subject_id if job.subject_type == "lead" else None,
    )
    kind = db.job_kinds.kind_of(job.kind)
    if kind is None:
        job.status = FAILED
        job.last_error = f"no handler is registered for job kind {job.kind!r} in this process"
        log.error("job %s: %s", job.id, job.last_error)
        return NO_HANDLER, None, None
    job_id, attempts = job.id, job.attempts  # a failed flush expires them: read before
    # A row run early (within the tolerance for clocks that differ) runs as of its due time: its
    # handler never sees a time before the moment it was planned for, so nothing written up to then
    # (an event's activity, stamped with that same time) is "in the future" to it.
    now = max(now, job.due_at)
    with tracing.job_span(kind=job.kind, job_id=job.id, traceparent=job.trace_parent):
        try:
            if kind.together:
                send = kind.handler(session=session, jobs=[job], now=now)
            elif takes_memo(kind.handler):
                send = kind.handler(session=session, job=job, now=now, memo=memo or Memo())
            else:
                send = kind.handler(session=session, job=job, now=now)
            if finish:
                session.write()
            session.flush()  # the handler's own constraint violations count as its failure
        except Exception as exc:
            raise _HandlerFailed(job_id, attempts, exc, kind.name) from exc
    return RAN, job.due_at, send


def run_batch(*, db, job_ids: Sequence[int], now: datetime) -> dict[int, str]:
    """Run a message's rows of a kind registered with `batch` (dispatch.messages_for): what happened
    to each, by id.

    The rows still at their first attempt are counted in one statement (`count_attempts`: the same
    compare-and-set as a delivery's, SKIP LOCKED), then claimed in one statement and run one after
    the other in one transaction, which commits every effect with its row's `done`. If a handler
    fails, that transaction rolls back: the failed row is recorded with backoff, as a delivery's
    failure is, and the others run again alone, each claimed for the attempt counted here and run
    in a transaction of its own (`_run_counted`). No savepoint a row: a rolled-back savepoint
    would leave the session holding what its handler did in the transaction (jobs and messages to
    publish, what the Memo holds), and would cost two round trips a row. Every other row of the message
    (a retry, one another delivery holds or finished, one not due) goes the one-row way (`_run_one`).
    """
    started = time.perf_counter()
    counted = count_attempts(db=db, job_ids=job_ids, now=now)
    live = [row for row in counted if row.status != DEAD]
    kind = db.job_kinds.kind_of(live[0].kind) if live else None
    if kind is not None and kind.batch > 1 and len({row.attempts for row in live}) == 1:
        outcomes = _run_together(db=db, counted=live, now=now, started=started)
        alone = [row for row in counted if row.status == DEAD]
    else:  # a kind this process does not batch (or know): each counted row alone
        outcomes, alone = {}, counted
    for row in alone:
        with logs.scope(job_id=row.id):
            outcomes[row.id] = _run_counted(db=db, counted=row, now=now, started=time.perf_counter())
    for job_id in job_ids:
        if job_id not in outcomes:
            outcomes[job_id], _ = _run_one(db=db, job_id=job_id, now=now)
    return outcomes


def count_attempts(*, db, job_ids: Sequence[int], now: datetime) -> list:
    """Spend the first attempt of each of the rows `job_ids` that is due, open, never attempted and
    not held by another transaction, in one statement committed on its own (as `count_attempt`);
    returns their (id, kind, attempts, status), by id."""
    settings = db.settings
    params = {
        "job_ids": list(job_ids),
        "until": now + timedelta(seconds=settings.job_early_tolerance_seconds),
        "now": now,
        "b_max_attempts": settings.job_max_attempts,
        "b_lease_cutoff": now - timedelta(seconds=settings.redispatch_grace_seconds),
    }
    return sorted(
        claim_queries.run_alone(db, claim_queries.count_batch_statement(db), params), key=lambda row: row.id
    )


def claim_many(
    *, session: UnitOfWork, now: datetime, job_ids: Sequence[int], attempts: int
) -> list[ScheduledJob]:
    """`claim` for many rows counted at the same attempt, in one statement; the rows it took, by id."""
    statement = claim_queries.claim_many_statement(session)
    rows = session.connection().execute(
        statement, {"job_ids": list(job_ids), "b_attempts": attempts, "now": now}
    )
    return [loaded(session, ScheduledJob, row) for row in sorted(rows, key=lambda row: row.id)]


def _run_together(*, db, counted: list, now: datetime, started: float) -> dict[int, str]:
    """Claim the counted rows and run them in one transaction; on a handler's failure, record it and
    run the others alone. What happened to each, by id."""
    outcomes, ran = {}, []
    try:
        with db.unit_of_work() as session:
            jobs = claim_many(
                session=session, now=now, job_ids=[r.id for r in counted], attempts=counted[0].attempts
            )
            kind = db.job_kinds.kind_of(counted[0].kind)
            if kind is not None and kind.together:  # one call for all the rows, when they finish
                ran = [(job.id, RAN, job.due_at) for job in jobs]
                as_of = max([now, *(job.due_at for job in jobs)])  # as _run_handler: never before due
                _finish_together(session, lambda: kind.handler(session=session, jobs=jobs, now=as_of))
            else:
                memo = Memo()  # the batch's transaction's: what one row's handler read, the next uses
                for job in jobs:
                    with logs.scope(job_id=job.id):
                        outcome, due_at, _ = _run_handler(
                            db=db, session=session, job=job, now=now, finish=False, memo=memo
                        )
                    ran.append((job.id, outcome, due_at))
                _finish_together(session)
    except _BatchFinishFailed as failed:
        # No one row to blame: each runs alone, where a failure is its own.
        log.warning(
            "a batch of %d %s job(s) failed as it finished; running them alone",
            len(counted),
            counted[0].kind,
            exc_info=failed.__cause__,
        )
        return {
            row.id: _run_counted(db=db, counted=row, now=now, started=time.perf_counter()) for row in counted
        }
    except _HandlerFailed as failed:
        with logs.scope(job_id=failed.job_id):
            outcome = _failed(db=db, failed=failed, now=now)
        _counted_in_metrics(
            db, kind=failed.kind, outcome=outcome, due_at=None, now=now, seconds=_since(started)
        )
        outcomes[failed.job_id] = outcome
        for row in counted:
            if row.id != failed.job_id:
                with logs.scope(job_id=row.id):
                    outcomes[row.id] = _run_counted(db=db, counted=row, now=now, started=time.perf_counter())
        return outcomes
    for job_id, outcome, due_at in ran:
        outcomes[job_id] = outcome
        _counted_in_metrics(
            db,
            kind=counted[0].kind,
            outcome=outcome,
            due_at=due_at,
            now=now,
            seconds=_since(started, share=len(ran)),
        )
    for row in counted:
        outcomes.setdefault(row.id, SKIPPED)  # not claimed: a later attempt's delivery owns it
    return outcomes


class _BatchFinishFailed(Exception):
    """The batch failed as it finished: its `together` kind's handler, or the unit's writes."""


def _finish_together(session: UnitOfWork, run_together: Callable[[], object] = lambda: None) -> None:
    """`run_together()`, the handler of a `together` kind for all the batch's rows (e.g. one pass
    over the leads of 50 re-scoring jobs), then what the unit writes before its commit (its events
    and jobs, in one statement each); a failure here is the batch's."""
    try:
        run_together()
        session.write()
    except Exception as exc:
        raise _BatchFinishFailed() from exc
