"""The job ledger's use cases: schedule, cancel, run (claim and run), retry, list.

The ledger is the truth, Redis the transport. A row is written in the caller's transaction; rows
due within the horizon are published after that transaction commits; a run claims its row by
compare-and-set and commits the handler's effect together with `done`, so any delivery after the
first one that succeeded, and any concurrent duplicate, does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa

from app.platform.db import UnitOfWork, UTCDateTime
from app.platform.scheduling import claim_queries, queries
from app.platform.scheduling.dispatch import publish_claimed, release
from app.platform.scheduling.models import (
    CANCELLED,
    DISPATCHED,
    OPEN,
    PENDING,
    ScheduledJob,
)
from app.platform.scheduling.registry import JobKinds
from app.platform.telemetry import tracing

log = logging.getLogger(__name__)

# --- scheduling -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """A ledger row to write: `uow.schedule(Job(...))`, the one way to put work on the ledger.
    `now`: when it is scheduled (the row's created_at; the dispatch horizon counts from it).
    `merge`: jobs of one unit that name the same `merge` are written as `merge(jobs)` makes them,
    at its commit (a unit's new messages: one delivery job per clinic and lane, not one each)."""

    kind: str
    due_at: datetime
    dedupe_key: str
    now: datetime
    clinic_id: int | None = None
    subject_type: str | None = None
    subject_id: int | None = None
    payload: dict | None = None
    origin: dict | None = None
    max_attempts: int | None = None
    merge: Callable[[list[Job]], list[Job]] | None = field(default=None, compare=False, repr=False)

    @staticmethod
    def write_all(session: UnitOfWork, jobs: list[Job]) -> None:
        """The unit's jobs, as it writes them before its commit (app/platform/db/uow.py): see `_write`."""
        _write(session, jobs, objects=False)


def _write(session: UnitOfWork, jobs: list[Job], *, objects: bool) -> list:
    """Write the jobs: one statement for each clock reading they carry (one, but in a batch of
    ledger jobs that ran at different times), so a job that sets a task's timers, a lead's
    escalation, its re-scoring and its events' processing writes one INSERT, not four. The rows
    created (`_write_rows`)."""
    by_now: dict[datetime, list[dict]] = {}
    for job in _merged(jobs):
        spec = {name: getattr(job, name) for name in _COLUMNS}
        by_now.setdefault(job.now, []).append(spec)
    return [row for now, specs in by_now.items() for row in _write_rows(session, specs, now, objects)]


_COLUMNS = [spec.name for spec in fields(Job) if spec.name not in ("now", "merge")]  # a row's, by name


def _merged(jobs: list[Job]) -> list[Job]:
    """The jobs as written: those that name a `merge`, replaced by what it makes of them."""
    alone, by_merge = [], {}
    for job in jobs:
        if job.merge is None:
            alone.append(job)
        else:
            by_merge.setdefault(job.merge, []).append(job)
    return alone + [written for merge, group in by_merge.items() for written in merge(group)]


def written(session: UnitOfWork) -> list[ScheduledJob]:
    """Write the jobs the unit holds for its commit now, for work that must see their rows (a
    ledger read, an id to store); the rows they created, as the session's objects. In a savepoint
    they stay held too (the savepoint may roll back alone; written again at the commit, each
    dedupe_key is kept once). Jobs that name a `merge` wait for the commit, merged with all the
    unit's others."""
    waiting = [job for job in session.jobs if job.merge is None]
    if not session.in_nested_transaction():
        session.jobs[:] = [job for job in session.jobs if job.merge is not None]
    return _write(session, waiting, objects=True) if waiting else []


def row_of(session: UnitOfWork, job: Job) -> ScheduledJob:
    """The ledger row of a job the unit scheduled (the one created, or the one that held its
    dedupe_key already), for a caller that stores its id."""
    for row in written(session):
        if row.dedupe_key == job.dedupe_key:
            return row
    return queries.existing(session, job.dedupe_key)


def _write_rows(session: UnitOfWork, jobs: Iterable[dict], now: datetime, objects: bool) -> list:
    """Insert the rows (job fields by name) whose dedupe_key is new; the ones it created: as the
    session's objects, else (`objects` false: the commit's write, which needs no row back) as plain
    (id, status, queue, due_at, kind, subject) tuples, enough to publish them.

    A row whose dedupe_key exists is skipped: its key is inserted first, by INSERT ... ON CONFLICT DO
    NOTHING into `scheduled_job_keys` (unique across the ledger's monthly partitions), which leaves
    the caller's transaction intact (an IntegrityError would abort it on PostgreSQL).

    A row due within the horizon is stored as dispatched and published once the caller commits (no
    UPDATE after the commit), and a row of a draining kind (events processing, re-scoring) publishes
    only if no worker is draining the kind already (`_wake`): a drainer takes it with the others.
    If that publish fails the row is handed back to pending for the promote sweep, and if the
    process dies between commit and publish, the redispatch sweep sends it after its grace."""
    kinds = session.database.job_kinds
    rows = [_row_values(job, now, kinds) for job in jobs]
    if not rows:
        return []
    for values in rows:
        if values["due_at"] <= kinds.published_by(values["kind"], now, session.database.settings):
            values.update(status=DISPATCHED, dispatched_at=now)
    created = queries.insert_new(session, rows) if objects else queries.insert_new_plain(session, rows)
    dispatched = [job for job in created if job.status == DISPATCHED]
    if dispatched:
        publish_after_commit(session, dispatched, now, new=True)
    return created


def publish_after_commit(session: UnitOfWork, rows: Sequence, now: datetime, *, new: bool = False) -> None:
    """The one way ledger rows reach the broker once their unit has committed (never if it rolled
    back), by `publish_claimed`: a failed publish hands rows dispatched at `now` back to pending for
    the promote sweep (a row dispatched earlier stays for the redispatch sweep).

    A row still pending (a manual retry) is first marked dispatched, by compare-and-set (only if
    still pending), committed on its own; the others the unit stored as dispatched already.
    `new`: rows the unit has just written: a draining kind's publish only if they must wake a
    worker (`_wake`); a drainer already out takes them with the others.
    """
    session.publish_after_commit(
        Publication(session.database, [Dispatched.of(row) for row in rows], now, new)
    )


@dataclass
class Publication:
    """Ledger rows a unit publishes once it has committed (`publish_after_commit`)."""

    db: object
    rows: list[Dispatched]
    now: datetime
    new: bool

    def publish(self) -> None:
        db, sent, now = self.db, self.rows, self.now
        pending = [row.id for row in sent if row.status == PENDING]
        if pending:
            sent = [row for row in sent if row.status != PENDING] + _mark_dispatched(db, pending, now)
        if self.new:
            for kind in {row.kind for row in sent if db.job_kinds.kind_of(row.kind).drain}:
                of_kind = [row for row in sent if row.kind == kind]
                if not _wake(db.redis, kind, db=db, rows=of_kind, now=now):
                    sent = [row for row in sent if row.kind != kind]  # a draining worker takes them
        if sent:
            publish_claimed(db=db, dispatcher=db.dispatcher, rows=sent, now=now)


_JOBS = ScheduledJob.__table__
# Built once: it runs after every commit that put a pending row back on the broker (a manual retry).
_MARK_DISPATCHED = (
    sa.update(_JOBS)
    .where(_JOBS.c.id.in_(sa.bindparam("b_ids", expanding=True)), _JOBS.c.status == PENDING)
    .values(status=DISPATCHED, dispatched_at=sa.bindparam("b_now", type_=UTCDateTime()))
    .returning(
        _JOBS.c.id, _JOBS.c.queue, _JOBS.c.due_at, _JOBS.c.kind, _JOBS.c.subject_type, _JOBS.c.subject_id
    )
)


def _mark_dispatched(db, job_ids: list[int], now: datetime) -> list:
    """The compare-and-set pending → dispatched, committed; the rows it took (for `publish_claimed`),
    none if it failed (the commit that wrote the rows stands: they stay pending for the promote sweep).

    One statement is atomic on its own: on PostgreSQL it runs in autocommit (no BEGIN and COMMIT
    round trips, no ORM session); on SQLite in the BEGIN IMMEDIATE transaction of app/platform/db/engine.py.
    """
    try:
        return list(claim_queries.run_alone(db, _MARK_DISPATCHED, {"b_ids": job_ids, "b_now": now}))
    except Exception:
        log.exception("could not mark %d job(s) dispatched; the promote sweep will send them", len(job_ids))
        return []


WAKE_SECONDS = 5  # a drainer that died holding the flag blocks new wake-ups this long at most


def wake_key(kind: str) -> str:
    return f"followup:drain-wanted:{kind}"


def set_wake_flag(redis, kind: str, at: datetime) -> bool:
    """Raise the kind's flag for a wake-up due `at`, unless one is out already (then False). The
    flag holds the wake-up's time: see `release_wake_flag`."""
    return bool(redis.set(wake_key(kind), f"{at.timestamp():.3f}", nx=True, ex=WAKE_SECONDS))


# Clear the flag if its wake-up is due by ARGV[1] (epoch seconds): 1 if it is clear now, 0 if left.
_RELEASE = """
local at = redis.call('GET', KEYS[1])
if not at then return 1 end
if tonumber(at) <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""


def release_wake_flag(redis, kind: str, *, now: datetime, tolerance: float) -> bool:
    """A drainer that found nothing due clears the kind's flag before its last look, so that rows
    committed after that look wake a worker themselves; true if the flag is clear.

    Only the flag of a wake-up due by now (within the early tolerance, as rows are): a flag whose
    wake-up is due later stays, and that wake-up looks then for the rows committed meanwhile. Any
    delivery of the kind drains: were each to clear the flag, then with rows due a moment after
    they are written (re-scoring) every cleared flag would let the next commit publish a message
    of its own, whose delivery cleared it again, a message per row that runs nothing.
    """
    deadline = (now + timedelta(seconds=tolerance)).timestamp()
    return bool(redis.register_script(_RELEASE)(keys=[wake_key(kind)], args=[f"{deadline:.3f}"]))


def _wake(redis, kind: str, *, db, rows, now: datetime) -> bool:
    """Whether this commit must publish: true unless a wake-up of the kind is already out.

    The flag is raised with the first wake-up (for its earliest row's time) and cleared by the
    draining worker before its last look for due rows (`release_wake_flag`), so a row committed
    after that look finds the flag clear and wakes a worker itself.
    Redis unreachable: the rows go back to pending for the promote sweep.
    """
    try:
        return set_wake_flag(redis, kind, min(row.due_at for row in rows))
    except Exception:
        log.exception("could not reach Redis to wake a worker; the promote sweep will send the job")
        with db.unit_of_work() as session:
            release(session=session, job_ids=[row.id for row in rows], dispatched_at=now)
        return False


class Dispatched(NamedTuple):
    """A row to publish, as `publish_claimed` needs it (read before the commit expires it)."""

    id: int
    queue: str
    due_at: datetime
    kind: str
    subject_type: str | None
    subject_id: int | None
    status: str = DISPATCHED

    @classmethod
    def of(cls, row, *, eta_offset: timedelta = timedelta(0)) -> Dispatched:
        """`eta_offset`: its message's eta is on another clock (a host ahead of the database's)."""
        due_at = row.due_at + eta_offset
        return cls(row.id, row.queue, due_at, row.kind, row.subject_type, row.subject_id, row.status)


def _row_values(job: dict, now: datetime, kinds: JobKinds) -> dict:
    unknown = set(job) - {
        "kind", "due_at", "dedupe_key", "clinic_id", "subject_type", "subject_id", "payload", "origin",
        "max_attempts",
    }  # fmt: skip
    if unknown:
        raise TypeError(f"unknown job fields: {', '.join(sorted(unknown))}")
    kind = kinds.kind_of(job["kind"])
    if kind is None:
        raise ValueError(f"unknown job kind {job['kind']!r}: add its handler to the handler map first")
    due_at = job["due_at"]
    if due_at.tzinfo is None:
        raise ValueError("due_at must be timezone-aware")
    if not job.get("dedupe_key"):
        raise ValueError("every job needs a dedupe_key")
    return {
        "clinic_id": job.get("clinic_id"),
        "kind": kind.name,
        "queue": kind.queue,
        "subject_type": job.get("subject_type"),
        "subject_id": job.get("subject_id"),
        "payload": job.get("payload") or {},
        "due_at": due_at,
        "status": PENDING,
        "dispatched_at": None,  # set for a row stored as dispatched (see _write_rows)
        "attempts": 0,
        "max_attempts": job.get("max_attempts"),
        "dedupe_key": job["dedupe_key"],
        "origin": job.get("origin"),
        "created_at": now,
        # The span writing the row: its run continues this trace (app/platform/telemetry/tracing.py).
        "trace_parent": tracing.current_traceparent(),
    }


# --- cancelling -----------------------------------------------------------------------------------


def cancel(
    *,
    session: UnitOfWork,
    now: datetime,
    subject_type: str,
    subject_id: int,
    kinds: Iterable[str] | None = None,
) -> int:
    """Cancel the subject's pending and dispatched jobs (of `kinds`, if given); returns how many."""
    written(session)  # the unit's jobs waiting for the commit: cancelled too
    stmt = sa.update(ScheduledJob).where(
        ScheduledJob.subject_type == subject_type,
        ScheduledJob.subject_id == subject_id,
        ScheduledJob.status.in_(OPEN),
    )
    if kinds is not None:
        stmt = stmt.where(ScheduledJob.kind.in_(list(kinds)))
    result = session.execute(
        stmt.values(status=CANCELLED, finished_at=now).execution_options(synchronize_session="fetch")
    )
    return result.rowcount


def cancel_job(*, session: UnitOfWork, job_id: int, now: datetime) -> bool:
    """Cancel one job if it has not run yet; returns whether it was cancelled."""
    written(session)  # the unit's jobs waiting for the commit: cancelled too
    result = session.execute(
        sa.update(ScheduledJob)
        .where(ScheduledJob.id == job_id, ScheduledJob.status.in_(OPEN))
        .values(status=CANCELLED, finished_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount == 1
