"""Many messages delivered together: the `notification.deliver_batch` jobs (queue_many queues them, a
campaign's, in the bulk lane) and `notification.deliver_together` (a unit's transactional messages,
e.g. a batch of timers' staff alerts: outgoing.send groups them).

Once the job's `done` commits, the worker takes the batch's rows a window at a time
(`notification_claim_window` rows):
  1. one transaction records the previous window's outcomes (one compare-and-set statement for all
     of them, app/platform/delivery/queries.settle_many) and claims the next window (pending → sending,
     attempts + 1: one UPDATE ... RETURNING);
  2. the window's messages go out, no transaction open, over the worker process's kept-alive SMTP
     connection (providers/smtp.py: pipelined where the server offers it);
  3. the last window's outcomes commit together with the batch's transient failures, which are
     retried as one batch job once the longest of their backoffs has passed.
A duplicate job, or a row another job took, finds the row no longer pending: skipped. A worker
killed mid-batch leaves the window it was sending `sending`: recover_stuck_sends settles it as it
does a single message in flight (`unknown`, never sent twice); the windows it never reached stay
`pending` with no job, and the same sweep schedules them again. A batch still running at half the
task's soft time limit (a provider timing out on every message) hands the rest back as single jobs.
Between windows, a bulk batch steps aside while a new lead's processing waits
(app/platform/scheduling/wakeups.py): the rest goes back as one batch job, due `yield_again_seconds` later,
which sends all its windows (it may still step aside as its delivery starts, for at most
`yield_at_most_seconds`): a campaign is delayed while leads wait, never starved.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa

from app.domains.outbound import outgoing, receipts
from app.domains.outbound.models import DeliveryStatus, Notification
from app.domains.outbound.providers import channels
from app.domains.outbound.worker import sending
from app.platform import clock as app_clock
from app.platform.db import UnitOfWork
from app.platform.delivery import queries as delivery_queries
from app.platform.delivery import service as outbound
from app.platform.scheduling import service as scheduling
from app.platform.scheduling import wakeups

log = logging.getLogger(__name__)

_CLAIM = outbound.claim_many_statement(Notification.__table__, sending.CLAIMED)
_OUTCOME = ("status", "attempts", "sent_at", "provider_message_id", "sender", "last_error", "next_attempt_at")
HANDED_BACK = "handed back"
STEPPED_ASIDE = "stepped aside"  # left for later while a new lead's processing waits
STEPPED_ASIDE_ONCE = "stepped_aside"  # in a handed-back batch job's payload: it does not again


def claim_batch(
    *, session: UnitOfWork, job, now: datetime, send_hooks: sending.SendHooks
) -> Callable[[], dict[str, int]]:
    """The `notification.deliver_batch` and `.deliver_together` handler: nothing to write here; what
    the runner calls once the job's `done` commits: the delivery of the batch's rows (`deliver_batch`)
    with the engine's guards and composers (`send_hooks`, bound by app/bootstrap.py)."""
    payload = job.payload or {}
    ids = [int(i) for i in payload.get("notification_ids", [])]
    bulk = job.kind != outgoing.DELIVER_TOGETHER
    # A batch that stepped aside once goes through: a campaign is delayed, never starved.
    steps_aside = bulk and not payload.get(STEPPED_ASIDE_ONCE, False)
    return partial(
        deliver_batch, db=session.database, notification_ids=ids, send_hooks=send_hooks,
        steps_aside=steps_aside, bulk=bulk,
    )  # fmt: skip


def deliver_batch(
    *,
    db,
    notification_ids: list[int],
    send_hooks: sending.SendHooks,
    clock=app_clock.now,
    steps_aside: bool = True,
    bulk: bool = True,
) -> dict[str, int]:
    """Claim, send and record the rows window by window; never raises. How many rows ended how.
    `steps_aside`: between windows, hand the rest back while a new lead's processing waits; `bulk`:
    the batch's lane, which its hand-backs and retries keep."""
    deadline = time.monotonic() + db.settings.task_soft_time_limit / 2
    batch = _Batch(db, send_hooks, deadline=deadline, steps_aside=steps_aside, bulk=bulk)
    sent: list[sending.Attempt] = []  # the window just sent: its outcomes are written with the next claim
    rest, window = list(notification_ids), db.settings.notification_claim_window
    stepping_aside = False
    while rest and not batch.past_deadline():
        try:
            claimed = batch.record_and_claim(sent, rest[:window], clock())
        except Exception:  # both rolled back: `sent` is recorded on its own, the rest handed back
            log.exception("could not claim notification %s and on; handing the batch's rest back", rest[0])
            break
        if claimed is None:  # `sent` recorded; a new lead's processing waits: the rest is for later
            sent, stepping_aside = [], True
            break
        sent = batch.send(claimed)
        rest = rest[window:]
    batch.finish(sent, clock())
    if rest and stepping_aside:
        batch.count(STEPPED_ASIDE, _step_aside(db, rest, clock()))
    elif rest:
        batch.count(HANDED_BACK, _hand_back(db, rest, clock(), bulk=bulk))
    return dict(batch.outcomes)


@dataclass(frozen=True)
class _Retry:
    notification_id: int
    clinic_id: int
    due_at: datetime


class _Batch:
    """One batch's run: its caches (senders, clinic settings), its outcomes and its retries."""

    def __init__(self, db, send_hooks: sending.SendHooks, *, deadline: float, steps_aside: bool, bulk: bool):
        self.db, self.settings, self.deadline = db, db.settings, deadline
        self.send_hooks = send_hooks  # the engine's guards and composers
        self.steps_aside = steps_aside  # between windows, while a new lead's processing waits
        self.bulk = bulk  # the lane its hand-backs and retries go in
        self.outcomes: Counter[str] = Counter()
        self.senders: dict[int, str] = {}
        self.limits: dict[int, dict | None] = {}  # each clinic's settings, for its provider rate limits
        self.retries: list[_Retry] = []  # transient failures, rescheduled together at the end
        self.clinics: dict[int, int] = {}  # each claimed row's clinic

    def past_deadline(self) -> bool:
        return time.monotonic() > self.deadline

    def count(self, outcome: str, n: int = 1) -> None:
        if n:
            self.outcomes[outcome] += n

    def record_and_claim(
        self, sent: list[sending.Attempt], ids: list[int], now: datetime
    ) -> list[tuple[channels.Outgoing, int]] | None:
        """One transaction: the previous window's outcomes, then pending → sending of `ids`. If it
        fails, both roll back (the retries it added with them), and the window is not claimed.
        None: after a window sent, a new lead's processing waits (wakeups.realtime_is_behind), and
        only the outcomes were written: the batch steps aside."""
        mark, counted = len(self.retries), Counter()
        try:
            with self.db.unit_of_work() as session:
                counted = self._record(session, sent, now)
                if sent and self._behind_realtime(session, now):
                    rows = claimed = None
                else:
                    rows, claimed = self._claim(session, ids, now)
        except Exception:
            del self.retries[mark:]
            raise
        self.outcomes.update(counted)
        if claimed is None:
            return None
        self.count("skipped", len(ids) - len(rows))  # sent, being sent or given up: another job got there
        self.count("deferred", len(rows) - len(claimed))
        return claimed

    def _behind_realtime(self, session: UnitOfWork, now: datetime) -> bool:
        return self.steps_aside and wakeups.realtime_is_behind(session, now=now, settings=self.settings)

    def _claim(self, session: UnitOfWork, ids: list[int], now: datetime) -> tuple[list, list]:
        """The rows of `ids` claimed (pending → sending), and the messages to send of those the
        clinic's rate limits do not defer."""
        rows = outbound.claim_many(session, _CLAIM, ids, now)
        self.clinics.update((row.id, row.clinic_id) for row in rows)
        self._load_clinics(session, {row.clinic_id for row in rows})
        claimed = [
            (
                sending.message_of(session, row, self.settings, self.send_hooks.composers, self.senders),
                row.attempts,
            )
            for row in rows
            if not sending.held_at_send(session, row, now, self.send_hooks.guards)
            and not sending.deferred_by_rate_limit(session, row, now, cache=self.limits)
        ]
        return rows, claimed

    def _load_clinics(self, session: UnitOfWork, clinic_ids: set[int]) -> None:
        """Each clinic's settings, read once a batch: its rate limits (held_until's cache) and From."""
        for clinic_id in clinic_ids - self.limits.keys():
            self.limits[clinic_id] = sending.clinic_settings(session, clinic_id)
            self.senders[clinic_id] = sending.email_sender(self.limits[clinic_id], self.settings)

    def send(self, claimed: list[tuple[channels.Outgoing, int]]) -> list[sending.Attempt]:
        """Send the claimed messages in turn; those the deadline stops before are given back unsent."""
        pacers = self.db.wiring.caches.pacers  # the engine's
        outcomes = sending.send_batch([m for m, _ in claimed], self.settings, pacers, stop=self.past_deadline)
        return [
            sending.Attempt(message, number, *(outcome or (HANDED_BACK, None, None)))
            for (message, number), outcome in zip(claimed, outcomes, strict=True)
        ]

    def finish(self, sent: list[sending.Attempt], now: datetime) -> None:
        """The last window's outcomes and the batch's retries, in one transaction; never raises: rows
        it leaves `sending` the stuck sweep settles, rows left pending without a job it reschedules."""
        if not sent and not self.retries:
            return
        mark = len(self.retries)
        try:
            with self.db.unit_of_work() as session:
                counted = self._record(session, sent, now)
                _schedule_retries(session, self.retries, now, bulk=self.bulk)
            self.outcomes.update(counted)
        except Exception:
            log.exception("could not record the outcomes of %d notification(s)", len(sent))
            del self.retries[mark:]
            self.count("unrecorded", len(sent))
            try:
                with self.db.unit_of_work() as session:
                    _schedule_retries(session, self.retries, now, bulk=self.bulk)
            except Exception:
                log.exception("could not reschedule %d notification(s)", len(self.retries))

    def _record(self, session: UnitOfWork, sent: list[sending.Attempt], now: datetime) -> Counter:
        """Write the window's outcomes in one statement; what each became."""
        values = [_outcome(attempt, now, self.settings) for attempt in sent]
        written = set(delivery_queries.settle_many(session, Notification.__table__, values, _OUTCOME))
        counted: Counter[str] = Counter()
        for attempt, value in zip(sent, values, strict=True):
            row_id = attempt.message.notification_id
            if row_id not in written:
                counted["stale"] += 1
            elif attempt.status == HANDED_BACK:
                job = outgoing.delivery_job(row_id, self.clinics[row_id], now, bulk=self.bulk)
                session.schedule(scheduling.Job(now=now, **job))
                counted[HANDED_BACK] += 1
            else:
                counted[self._after(attempt, value)] += 1
                if value["status"] == DeliveryStatus.FAILED:  # rare: a row of its own to read
                    failed = session.get(Notification, row_id)
                    receipts.failed_for_good(session=session, notification=failed, now=now)
        return counted

    def _after(self, attempt: sending.Attempt, value: dict) -> str:
        """What a written outcome is; a retry joins the batch's retries."""
        row_id = attempt.message.notification_id
        if value["status"] == DeliveryStatus.SENT:
            return DeliveryStatus.SENT
        if value["status"] == DeliveryStatus.FAILED:
            log.warning("notification %s failed: %s", row_id, attempt.error)
            return DeliveryStatus.FAILED
        if value["status"] == DeliveryStatus.UNKNOWN:
            log.warning("notification %s: outcome unknown, held for reconciliation", row_id)
            return DeliveryStatus.UNKNOWN
        if value["status"] == DeliveryStatus.DEAD:
            log.error("notification %s is dead after %d attempts: %s", row_id, attempt.number, attempt.error)
            return DeliveryStatus.DEAD
        self.retries.append(_Retry(row_id, self.clinics[row_id], value["next_attempt_at"]))
        return "retrying"


def _outcome(attempt: sending.Attempt, now: datetime, settings) -> dict:
    """The row's columns after this attempt (settle_many's outcome)."""
    value = {
        "id": attempt.message.notification_id,
        "attempt": attempt.number,
        "attempts": attempt.number,
        "sent_at": None,
        "provider_message_id": None,
        "sender": None,
        "last_error": None,
        "next_attempt_at": None,
    }
    if attempt.status == DeliveryStatus.SENT:
        value.update(
            status=DeliveryStatus.SENT,
            sent_at=now,
            provider_message_id=(attempt.provider_id or "")[:128] or None,
            sender=sending.sender_of(attempt.message),
        )
    elif attempt.status == DeliveryStatus.UNKNOWN:  # held for reconciliation, never retried by itself
        value.update(
            status=DeliveryStatus.UNKNOWN,
            sender=sending.sender_of(attempt.message),  # it may have gone
            last_error=(attempt.error or "")[: outbound.MAX_ERROR],
        )
    elif attempt.status == HANDED_BACK:  # never handed to the provider: not an attempt
        value.update(status=DeliveryStatus.PENDING, attempts=attempt.number - 1, next_attempt_at=now)
    else:
        status, due = outbound.after_failed_attempt(
            sending.retry_policy(settings),
            attempt.number,
            permanent=attempt.status == DeliveryStatus.FAILED,
            now=now,
            jitter=random.random(),
            dead=DeliveryStatus.DEAD,
        )
        value.update(
            status=status, next_attempt_at=due, last_error=(attempt.error or "")[: outbound.MAX_ERROR]
        )
    return value


def _schedule_retries(session: UnitOfWork, retries: list[_Retry], now: datetime, *, bulk: bool) -> None:
    """A batch's transient failures as one batch job of its lane, due when the last of their backoffs
    ends (a backoff is a minimum wait)."""
    if not retries:
        return
    due = max(r.due_at for r in retries)
    session.execute(
        sa.update(Notification)
        .where(
            Notification.id.in_([r.notification_id for r in retries]),
            Notification.status == DeliveryStatus.PENDING,
        )
        .values(next_attempt_at=due)
        .execution_options(synchronize_session=False)
    )
    rows = [outgoing.Created(r.notification_id, r.clinic_id, due) for r in retries]
    kind = outgoing.DELIVER_BATCH if bulk else outgoing.DELIVER_TOGETHER
    for job in outgoing.batch_jobs(rows, kind=kind):
        session.schedule(scheduling.Job(now=now, **job))


def _hand_back(db, notification_ids: list[int], now: datetime, *, bulk: bool) -> int:
    """Give rows a batch did not get to a delivery job each (in its lane), due now; never raises
    (the sweep remains)."""
    return _reschedule(
        db,
        notification_ids,
        due=now,
        now=now,
        jobs_of=lambda rows: [outgoing.delivery_job(r.id, r.clinic_id, now, bulk=bulk) for r in rows],
    )


def _step_aside(db, notification_ids: list[int], now: datetime) -> int:
    """Give the rows a batch did not get to back as one batch job (per clinic), due
    `yield_again_seconds` later, marked to go through next time: one job for the rest, not one per
    message, since every batch of a campaign may step aside. Never raises (the sweep remains)."""
    due = now + timedelta(seconds=db.settings.yield_again_seconds)
    return _reschedule(
        db,
        notification_ids,
        due=due,
        now=now,
        jobs_of=lambda rows: [
            {**job, "payload": {**job["payload"], STEPPED_ASIDE_ONCE: True}}
            for job in outgoing.batch_jobs(outgoing.Created(r.id, r.clinic_id, due) for r in rows)
        ],
    )


def _reschedule(db, notification_ids: list[int], *, due: datetime, now: datetime, jobs_of) -> int:
    """The rows of `notification_ids` still pending, next attempt at `due`, on the ledger by the
    jobs `jobs_of(rows)` makes; how many. Never raises (the sweep remains)."""
    try:
        with db.unit_of_work() as session:
            rows = session.execute(
                sa.select(Notification.id, Notification.clinic_id).where(
                    Notification.id.in_(notification_ids), Notification.status == DeliveryStatus.PENDING
                )
            ).all()
            session.execute(
                sa.update(Notification)
                .where(Notification.id.in_([r.id for r in rows]))
                .values(next_attempt_at=due)
                .execution_options(synchronize_session=False)
            )
            for job in jobs_of(rows):
                session.schedule(scheduling.Job(now=now, **job))
            return len(rows)
    except Exception:
        log.exception(
            "could not hand %d notification(s) back; recover_stuck_sends will", len(notification_ids)
        )
        return 0
