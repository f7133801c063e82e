"""Turns between clinics on a queue whose kinds have a lane (registry.JobKind.lane).

A queue's messages are first in, first out: a clinic's campaign of thousands, published first, would
hold every other clinic's message for its whole length. On such a queue a message is a turn, not an
order: the delivery runs the queue's next row in turn (`count_next_turn`), the transactional lane
first, then the clinic whose last turn is the oldest, then that clinic's oldest due row. Every row
still has its own message, so there are as many turns as rows: a turn that runs another clinic's
row leaves its own row to the turn that comes next.

Bulk never starves: one turn in BULK_EVERY takes the bulk lane first.

A clinic's share of a worker process: at most `threads_per_clinic` of the process' turns on a queue
run one clinic's rows at once (`next_turn`), so a clinic's backlog of slow sends leaves the others a
thread. A turn that finds only the rows of clinics holding their share waits for one of their
turns to end, looking again every TURN_LOOK_SECONDS for another clinic's row (which it then runs at
once). The share is counted in the process, where the threads are: several sender processes give a
clinic that many shares.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.platform.scheduling import claim_queries
from app.platform.scheduling.attempts import count_params
from app.platform.scheduling.models import OPEN, LedgerTurn, ScheduledJob

BULK_EVERY = 5  # one turn in five goes to the bulk lane first, when both lanes have rows waiting

TURN_LOOK_SECONDS = 0.1  # a turn waiting for a thread of its own looks again for another clinic's row
TURN_WAIT_SECONDS = 60.0  # then it runs its own row all the same: no message waits for ever

_TURNS = itertools.count(1)  # this process's turns: which of them go to the bulk lane first
_RUNNING: Counter[tuple[str, int]] = Counter()  # (queue, clinic key) -> this process' turns running its rows
_TURN_ENDED = threading.Condition()  # guards _RUNNING; told whenever one of those turns ends
_TURN = LedgerTurn.__table__
_JOBS = ScheduledJob.__table__
_MARK = (
    sa.update(_TURN)
    .where(_TURN.c.queue == sa.bindparam("b_queue"), _TURN.c.clinic_key == sa.bindparam("b_clinic"))
    .values(served_at=sa.bindparam("b_now"))
)
_OWN_ROW = sa.select(_JOBS.c.kind, _JOBS.c.status, _JOBS.c.due_at).where(_JOBS.c.id == sa.bindparam("job_id"))


def is_turn(*, db, job_id: int, now: datetime, queue: str | None) -> bool:
    """Whether a delivery of `job_id` from `queue` is a turn: the queue has laned kinds, and the row
    is of one of them and due (or already final: a duplicate's turn runs whatever is next). A row
    delivered early keeps its message for itself, so no row is left without one when it comes due."""
    if queue is None or not db.job_kinds.laned_kinds(queue):
        return False
    with db.engine.connect() as conn:
        row = conn.execute(_OWN_ROW, {"job_id": job_id}).first()
    if row is None:
        return False
    kind = db.job_kinds.kind_of(row.kind)
    if kind is None or kind.lane is None:
        return False
    early = row.due_at > now + timedelta(seconds=db.settings.job_early_tolerance_seconds)
    return not (row.status in OPEN and early)


@contextmanager
def next_turn(*, db, queue: str, now: datetime) -> Iterator:
    """The queue's next row in turn (`count_next_turn`), counted as one of its clinic's turns running
    in this process until the block ends; None when no row is due and free. The rows of clinics
    running `threads_per_clinic` turns already are passed over: with only theirs due, the turn waits
    (see the module's note)."""
    share, began, counted = db.settings.threads_per_clinic, time.monotonic(), None
    with _TURN_ENDED:
        while True:
            waited = time.monotonic() - began
            passed_over = [
                clinic for (q, clinic), running in _RUNNING.items() if q == queue and running >= share
            ]
            counted = count_next_turn(
                db=db, queue=queue, now=now + timedelta(seconds=waited), passed_over=passed_over
            )
            if counted is not None or not passed_over or waited > TURN_WAIT_SECONDS:
                break
            _TURN_ENDED.wait(timeout=TURN_LOOK_SECONDS)
        if counted is not None:
            _RUNNING[(queue, counted.clinic_id or 0)] += 1
    try:
        yield counted
    finally:
        if counted is not None:
            with _TURN_ENDED:
                _RUNNING[(queue, counted.clinic_id or 0)] -= 1
                _TURN_ENDED.notify_all()


def count_next_turn(*, db, queue: str, now: datetime, passed_over: list[int]):
    """Spend an attempt of the queue's next row in turn, committed on its own (as
    attempts.count_attempt), and give its clinic the latest turn; (id, kind, attempts, status,
    clinic_id), or None when no row of the queue's lanes is due and free (the rows of the clinics
    `passed_over` left out)."""
    bulk_first = next(_TURNS) % BULK_EVERY == 0
    lanes = db.job_kinds.laned_kinds(queue)
    statement = claim_queries.count_turn_statement(
        db, queue=queue, lanes=lanes, bulk_first=bulk_first, passing_over=bool(passed_over)
    )
    params = count_params(now, db.settings)
    if passed_over:
        params["b_passed_over"] = passed_over
    rows = claim_queries.run_alone(db, statement, params)
    if not rows:
        return None
    _mark_turn(db, queue=queue, clinic_id=rows[0].clinic_id, now=now)
    return rows[0]


def _mark_turn(db, *, queue: str, clinic_id: int | None, now: datetime) -> None:
    params = {"b_queue": queue, "b_clinic": clinic_id or 0, "b_now": now}
    with db.engine.begin() as conn:
        if conn.execute(_MARK, params).rowcount:
            return
        try:
            with conn.begin_nested():  # the clinic's first turn on the queue; a concurrent first wins
                conn.execute(sa.insert(_TURN).values(queue=queue, clinic_key=clinic_id or 0, served_at=now))
        except IntegrityError:
            pass
