"""Job kinds: the handler each kind runs with, as the composition root lists them (app/handlers.py),
held by one `JobKinds` per engine (app/bootstrap.py), never in a module-level registry.

A handler is plain service code, `handler(*, session, job, now)`, run inside the claim transaction:
its database effect commits together with the row's `done`, or not at all. The claim has already
marked the row in that transaction, so the handler sees `job.status == "done"` and `job.attempts`
as this attempt's number (1 on the first run). If it raises, everything it wrote rolls back and the
job is retried with backoff; it may run again, so an external send must carry a unique delivery key.
A kind with `batch=N` may share that transaction with up to N-1 other rows of its kind
(runner.run_batch): its handler must not depend on being alone in it. A kind registered `together`
has a handler of all its rows of one transaction, `handler(*, session, jobs, now)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.platform.celery_config import QUEUES


@dataclass(frozen=True)
class JobKind:
    """A job kind: `handler` runs the jobs of `name`, delivered on `queue` (one of QUEUES).

    `drain`: many rows of the kind come due at once and each is short (events processing): one
    delivery runs every due row of the kind, and new rows wake a worker only when none is draining
    (see scheduling.service._wake and runner.run_job).

    `sends_after_commit`: the handler returns its send, which the runner calls outside the claim
    transaction (once it commits); the send records the outcome in a unit of work of its own,
    opened on `session.database`.

    `batch`: rows of the kind published together while due (a bulk schedule, a sweep) go out as
    one message per `batch` rows, whose delivery claims and runs them in one transaction, each row
    still done with its own effect (runner.run_batch). Only for a handler whose whole effect is in
    the session and that holds no lock others wait for long: not with `sends_after_commit` (it sends outside
    the transaction). A draining kind's rows are not grouped in messages (a wake-up runs them all):
    its drainer takes up to `batch` due rows to a transaction (runner.drain).

    `together`: the handler is given all the kind's rows of its transaction at once,
    `handler(*, session, jobs, now)` (one row alone: a list of one), and does their work in one pass
    (a batch of re-scorings: one pass over all their leads). Its failure is the batch's: each row
    then runs alone (runner._run_together).

    `derived`: the kind only brings derived data up to date (a lead's score, the report counts):
    an open row of it is nobody's next step (`derived_kinds`).

    `yields`: work off a new lead's path (a chunk of a bulk action or import, a campaign's batch
    of emails, the timers of leads and tasks) that steps aside while the realtime queue's drained
    kinds (a new lead's processing) are behind: its delivery, with the rows it brought, is sent
    again shortly instead of running (runner.run_job), for at most `yield_at_most_seconds` past
    its due time.

    `due_later`: a draining kind whose rows are written due a moment after the change that made
    them (a re-scoring, a recount): a drainer that finds none due leaves a wake-up for the next one
    (wakeups.wake_for_later), since the rows committed while its wake-up was out published nothing.
    A kind whose rows are due when written (events processing) needs no such look.

    `lane`: the kind's rows are taken in turns between clinics (turns.py): a delivery of
    any laned kind on the queue runs the next row of the queue's laned kinds, transactional lane
    first, then the clinic whose last turn is the oldest, then the oldest due row. So one clinic's
    backlog makes another clinic wait about one run, not the whole backlog, and a reminder waits for
    no campaign. TRANSACTIONAL or BULK; None: the kind's rows run in the order their messages come.

    `when_due`: the kind's rows are published once due, by the promote sweep (those due together
    many to a message, with `batch`), never ahead with an eta: a worker holds an eta message in
    memory until its time, and a clock's warnings and breaches, two for every new lead and due
    minutes later, would fill the realtime worker with thousands of them; so would the retries of
    messages while a provider is down (each failed send tried again up to 8 minutes later: the
    sender grew about 1 MB a minute in bench/soak with the relay down). For rows a few seconds'
    lateness (the promote interval) does not hurt. A row due when written is published at once
    all the same.
    """

    name: str
    handler: Callable
    queue: str = "realtime"
    drain: bool = False  # a worker that runs one also runs the kind's other due rows (runner.run_job)
    sends_after_commit: bool = False  # it sends once the claim commits: never batched
    batch: int = 1  # rows due together run this many to a transaction (runner.run_batch)
    together: bool = False  # its handler takes all its rows of a transaction: handler(*, session, jobs, now)
    derived: bool = False  # it only brings derived data up to date (scores, report counts)
    yields: bool = False  # background work that steps aside while the realtime path is behind
    due_later: bool = False  # a draining kind whose rows are written due a moment after (runner.drain)
    lane: str | None = None  # TRANSACTIONAL or BULK: taken in turns between clinics (turns.py)
    when_due: bool = False  # published once due by the promote sweep, never held as an eta message


TRANSACTIONAL = "transactional"  # someone waits for it: a new lead's text, a reminder, a reply by hand
BULK = "bulk"  # a campaign's messages, bulk actions and imports: they go when no transactional row waits
LANES = (TRANSACTIONAL, BULK)


class JobKinds:
    """The job kinds of one engine, by name: built once by app/bootstrap.py from the handler map's
    JOB_KINDS (app/handlers.py), each checked here, and carried by the process's Database
    (`db.job_kinds`) to the ledger code that claims, runs and publishes rows. Two engines built side
    by side have two of these and share no kind."""

    def __init__(self, kinds: Iterable[JobKind] = ()):
        self._kinds: dict[str, JobKind] = {}
        for kind in kinds:
            check(kind)
            existing = self._kinds.get(kind.name)
            if existing is not None and _name(existing.handler) != _name(kind.handler):
                raise ValueError(f"job kind {kind.name!r} is already handled by {_name(existing.handler)}")
            self._kinds[kind.name] = kind

    def __iter__(self) -> Iterator[JobKind]:
        return iter(self._kinds.values())

    def with_kind(self, kind: JobKind) -> JobKinds:
        """These kinds with `kind` in place of the one of its name (a benchmark's other batch size)."""
        return JobKinds([*(known for known in self if known.name != kind.name), kind])

    def kind_of(self, kind: str) -> JobKind | None:
        return self._kinds.get(kind)

    def realtime_drained_kinds(self) -> list[str]:
        """The kinds of a new lead's path: drained on the realtime queue (events processing)."""
        return sorted(name for name, kind in self._kinds.items() if kind.queue == "realtime" and kind.drain)

    def laned_kinds(self, queue: str) -> dict[str, list[str]]:
        """The kinds of `queue` taken in turns, by lane (empty: the queue has none)."""
        lanes: dict[str, list[str]] = {}
        for name, kind in sorted(self._kinds.items()):
            if kind.queue == queue and kind.lane is not None:
                lanes.setdefault(kind.lane, []).append(name)
        return lanes

    def when_due_kinds(self) -> list[str]:
        """The kinds whose rows are published only once due (`when_due`)."""
        return sorted(name for name, kind in self._kinds.items() if kind.when_due)

    def derived_kinds(self) -> list[str]:
        return sorted(name for name, kind in self._kinds.items() if kind.derived)

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def published_by(self, kind: str, now: datetime, settings) -> datetime:
        """The latest due time at which a row of `kind` written or rescheduled at `now` goes on the
        broker at once (with its eta): the end of the dispatch horizon, or, for a kind published when
        due, now within the early tolerance (a row due a moment after the clock reading its unit was
        given). A later row waits in the ledger for the promote sweep."""
        job_kind = self._kinds.get(kind)
        if job_kind is not None and job_kind.when_due:
            return now + timedelta(seconds=settings.job_early_tolerance_seconds)
        return now + timedelta(seconds=settings.schedule_horizon_seconds)


def check(kind: JobKind) -> None:
    """Refuse a kind whose options contradict each other (ValueError), before any row of it is written."""
    name, queue, batch = kind.name, kind.queue, kind.batch
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r} for job kind {name!r}; use one of {', '.join(QUEUES)}")
    if batch < 1 or (batch > 1 and kind.sends_after_commit):
        raise ValueError(f"job kind {name!r}: batch must be 1 for a kind that sends_after_commit, else >= 1")
    if kind.together and kind.sends_after_commit:
        raise ValueError(f"job kind {name!r}: a kind run together sends nothing after its commit")
    if kind.yields and (queue == "realtime" or kind.drain):
        raise ValueError(f"job kind {name!r}: only a background kind that does not drain yields")
    if kind.when_due and kind.drain:
        raise ValueError(f"job kind {name!r}: a draining kind is woken, not published when due")
    if kind.due_later and not kind.drain:
        raise ValueError(f"job kind {name!r}: due_later is for a draining kind")
    if kind.lane is not None and (kind.lane not in LANES or kind.drain or batch > 1 or queue == "realtime"):
        raise ValueError(
            f"job kind {name!r}: a lane is one of {LANES}, for a background kind run one row at a time"
        )


def _name(handler: Callable) -> str:
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}"
