"""The outbound-delivery primitive: claim → send outside the transaction → record → backoff/dead →
recover stuck sends, for any table of messages with the columns id, status, attempts, sending_at,
next_attempt_at and last_error (notifications, webhook deliveries).

Why the send never runs inside a database transaction: a provider timeout would hold the row lock
(on SQLite the whole database's write lock) for its duration, and a commit failing after the send
would send again a message that went out. So:
  1. `claim` moves the row pending → sending and attempts + 1, in the job's transaction (it commits
     with the job's `done`); `sending_at` starts the lease;
  2. after that commit, with no transaction open, the domain sends;
  3. `settle` records the outcome in a short transaction of its own, by compare-and-set on
     (sending, attempts) (`settled` / `locked_attempt`): done, or after a failure `give_up_or_retry`
     (failed, dead, or pending again with a backoff from rules.py; the domain schedules the job).
Many rows at once (a batch of emails) take the same steps a window at a time: `claim_many` moves
every row of the window still pending to sending in one statement, and queries.settle_many writes
each row's outcome by the same compare-and-set, all of them in one statement.
A duplicate delivery of a job finds the row no longer pending and does nothing. A worker killed
between 1 and 3 leaves the row `sending` past its lease: `stuck` finds it for the domain's sweep,
which decides (send again when the receiver dedupes; otherwise "outcome unknown").

Row locks: `with_for_update` compiles to nothing on SQLite, whose writers are serialised anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.platform.db import UnitOfWork
from app.platform.delivery import rules

log = logging.getLogger(__name__)

PENDING, SENDING, FAILED = "pending", "sending", "failed"
MAX_ERROR = 2000
STUCK_BATCH = 1000


def claim_statement(table: sa.Table, returning: Iterable[sa.Column], *, where: Iterable = ()) -> sa.Update:
    """pending → sending (attempts + 1, lease from :now) as one compare-and-set UPDATE ... RETURNING,
    binding :row_id and :now. Build it once (a cached statement: it runs for every message).

    PostgreSQL re-checks the WHERE after waiting on a concurrent claim's row lock, so of two racing
    claims exactly one gets the row; SQLite serialises writers. The loser gets nothing back."""
    c = table.c
    return (
        sa.update(table)
        .where(c.id == sa.bindparam("row_id"), c.status == PENDING, *where)
        .values(_to_sending(c))
        .returning(*returning)
    )


def _to_sending(c) -> dict:
    """What a claim sets: sending now, one more attempt, no retry time (one place for both claims)."""
    return {
        "status": SENDING,
        "attempts": c.attempts + 1,
        "sending_at": sa.bindparam("now", type_=c.sending_at.type),
        "next_attempt_at": None,
    }


def claim_many_statement(table: sa.Table, returning: Iterable[sa.Column]) -> sa.Update:
    """claim_statement for many rows at once: every row of :row_ids (a list) still pending moves to
    sending in one UPDATE ... RETURNING; the others (done, being sent, given up) are left alone."""
    c = table.c
    return (
        sa.update(table)
        .where(c.id.in_(sa.bindparam("row_ids", expanding=True)), c.status == PENDING)
        .values(_to_sending(c))
        .returning(*returning)
    )


def claim_many(session: UnitOfWork, statement: sa.Update, row_ids: list[int], now: datetime) -> list:
    """The rows a claim_many_statement took, by id (the order they are to be sent in)."""
    if not row_ids:
        return []
    rows = session.connection().execute(statement, {"row_ids": row_ids, "now": now}).all()
    return sorted(rows, key=lambda row: row.id)


def claim(session: UnitOfWork, statement: sa.Update, row_id: int, now: datetime):
    """The claimed row (the statement's RETURNING), or None: done, being sent, or given up."""
    return session.connection().execute(statement, {"row_id": row_id, "now": now}).first()


def settled_statement(table: sa.Table, **values) -> sa.Update:
    """sending → an outcome, only if the row is still the attempt's (binds :row_id and :attempt);
    `values` may hold bind parameters of their own. Build it once."""
    c = table.c
    return (
        sa.update(table)
        .where(c.id == sa.bindparam("row_id"), c.status == SENDING, c.attempts == sa.bindparam("attempt"))
        .values(**values)
    )


def settled(session: UnitOfWork, statement: sa.Update, row_id: int, attempt: int, **params) -> bool:
    """Run a settled_statement; whether the row was still the attempt's (False: stale)."""
    result = session.connection().execute(statement, {"row_id": row_id, "attempt": attempt, **params})
    return result.rowcount == 1


def locked_attempt(session: UnitOfWork, model: type, row_id: int, attempt: int):
    """The row, locked, if it is still that attempt's (`sending`, same attempts); else None (stale)."""
    stmt = (
        sa.select(model)
        .where(model.id == row_id, model.status == SENDING, model.attempts == attempt)
        .with_for_update()
    )
    return session.scalars(stmt).first()


def settle(record: Callable[[Session, datetime], str], *, db, clock, what: str) -> str:
    """Record an attempt's outcome in a unit of work of `db` (the app's Database) of its own
    (`record(session, now)`, stamped by `clock` after the send); never raises: on failure the row
    stays `sending` for the stuck sweep."""
    try:
        with db.unit_of_work() as session:
            return record(session, clock())
    except Exception:
        log.exception("could not record the outcome of %s", what)
        return "unrecorded"


@dataclass(frozen=True)
class Failure:
    """How an attempt failed: the error to record, and whether it is permanent (never retried)."""

    error: str
    permanent: bool


def give_up_or_retry(
    row, policy: rules.RetryPolicy, failure: Failure, *, now: datetime, jitter: float, dead: str
) -> datetime | None:
    """After a failed attempt: the row failed (permanent error), `dead` (attempts ran out: the
    domain's name for it), or pending again. Returns when to try again (None: given up); the domain
    schedules that attempt's job."""
    row.last_error = failure.error[:MAX_ERROR]
    row.status, due = after_failed_attempt(
        policy, row.attempts, permanent=failure.permanent, now=now, jitter=jitter, dead=dead
    )
    if due is not None:
        row.next_attempt_at = due
    return due


def after_failed_attempt(
    policy: rules.RetryPolicy, attempts: int, *, permanent: bool, now: datetime, jitter: float, dead: str
) -> tuple[str, datetime | None]:
    """The status a row takes after its attempt number `attempts` failed (failed, `dead`, or pending
    again) and when to try again (None: given up)."""
    step = rules.after_failure(policy, attempts, permanent=permanent, jitter=jitter)
    if step.kind == rules.FAILED:
        return FAILED, None
    if step.kind == rules.EXHAUSTED:
        return dead, None
    return PENDING, now + timedelta(seconds=step.delay)


def stuck(session: UnitOfWork, model: type, *, cutoff: datetime) -> list:
    """Rows `sending` since before `cutoff` (their worker died mid-send), oldest first, locked;
    rows another sweep holds are skipped."""
    stmt = (
        sa.select(model)
        .where(model.status == SENDING, model.sending_at < cutoff)
        .order_by(model.sending_at)
        .limit(STUCK_BATCH)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(stmt))
