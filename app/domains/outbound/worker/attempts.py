"""Delivery of outgoing messages: the `notification.deliver` jobs on top of app/platform/delivery's primitive.

Send once. A message is a row (pending → sending → sent | failed | dead) delivered by ledger jobs of
kind `notification.deliver`. The send itself never runs inside a database transaction (an SMTP
timeout would hold the row lock, and on SQLite the whole database's write lock, for its duration):
  1. the job's handler (`claim_delivery`, inside the ledger's claim transaction) moves the row
     pending → sending and attempts+1; both commit together with the job's `done`;
  2. after that commit, in the same worker task, the message is sent (`deliver_claimed`);
  3. a second short transaction records the outcome by compare-and-set on (sending, attempts):
     sent; failed (permanent error); or, for a transient error, pending again with a new job due
     after a backoff (dead once attempts run out).
A duplicate delivery of the job, or any other job for the row, finds it no longer pending and does
nothing; a row already `sent` is never touched again. A worker killed between 1 and 3 leaves the row
`sending`: `recover_stuck_sends` finds it later. Neither SMTP nor Twilio's Messages API dedupes a
re-send, and a message handed over without a reply may well have arrived: it becomes `unknown`
(an SMS is reconciled by Twilio's status callback, an email by SendGrid's delivered event; else an
admin decides, retry with confirm_may_duplicate, one by one: no bulk retry takes it). The same holds
for a reply lost after the send."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa

from app.domains.outbound import outgoing, receipts
from app.domains.outbound.models import DeliveryStatus, Notification
from app.domains.outbound.providers import channels
from app.domains.outbound.worker import sending
from app.platform import clock as app_clock
from app.platform.db import UnitOfWork
from app.platform.delivery import service as outbound
from app.platform.scheduling.models import OPEN as OPEN_JOB_STATUSES
from app.platform.scheduling.models import ScheduledJob

log = logging.getLogger(__name__)


OUTCOME_UNKNOWN_STOPPED = "outcome unknown: worker stopped mid-send"

_CLAIM = outbound.claim_statement(Notification.__table__, sending.CLAIMED)


def claim_delivery(
    *, session: UnitOfWork, job, now: datetime, send_hooks: sending.SendHooks, settings
) -> Callable[[], str] | None:
    """The `notification.deliver` handler: pending → sending (commits with the job); what the runner
    calls once that commit is done: the send, which records the outcome in a unit of work of its own.
    `send_hooks`, `settings`: the engine's guards and composers, and its settings, bound by
    app/bootstrap.py."""
    row = outbound.claim(session, _CLAIM, job.subject_id, now)
    if row is None:
        return None  # sent, being sent, or given up: a duplicate or stale job does nothing
    held = sending.held_at_send(session, row, now, send_hooks.guards)
    if held or sending.deferred_by_rate_limit(session, row, now):
        return None
    message = sending.message_of(session, row, settings, send_hooks.composers)
    return partial(deliver_claimed, db=session.database, message=message, attempt=row.attempts)


def deliver_claimed(*, db, message: channels.Outgoing, attempt: int, clock=app_clock.now) -> str:
    """Send a claimed message (no transaction open), then record the outcome; never raises.

    `clock` stamps the outcome: the send takes real time (up to several socket timeouts), so the
    claim's `now` would date a backoff from before the send.
    """
    outcome = sending.send(message, db.settings, db.wiring.caches.pacers)  # the engine's pacers
    return _settle(db, sending.Attempt(message, attempt, *outcome), clock)


def _settle(db, attempt: sending.Attempt, clock) -> str:
    """Record an attempt's outcome in a transaction of its own; never raises (the row then stays
    `sending`, and recover_stuck_sends settles it: an email as outcome unknown)."""
    return outbound.settle(
        partial(_record, attempt=attempt, settings=db.settings),
        db=db,
        clock=clock,
        what=f"notification {attempt.message.notification_id}",
    )


def _record(session: UnitOfWork, now: datetime, attempt: sending.Attempt, settings) -> str:
    return record_outcome(
        session=session, attempt=attempt, now=now, jitter=random.random(), settings=settings
    )


def record_outcome(
    *, session: UnitOfWork, attempt: sending.Attempt, now: datetime, jitter: float, settings
) -> str:
    """Write one attempt's outcome if the row is still that attempt's (`sending`, same attempts).

    A transient error makes the row pending again with a delivery job after the backoff."""
    notification_id, status, error = attempt.message.notification_id, attempt.status, attempt.error
    if status == DeliveryStatus.SENT:
        return _record_sent(session, attempt, now)
    notification = outbound.locked_attempt(session, Notification, notification_id, attempt.number)
    if notification is None:
        return "stale"
    if status == DeliveryStatus.UNKNOWN:
        notification.status, notification.last_error = (
            DeliveryStatus.UNKNOWN,
            (error or "")[: outbound.MAX_ERROR],
        )
        notification.sender = sending.sender_of(attempt.message)  # it may have gone
        log.warning("notification %s: outcome unknown, held for reconciliation", notification_id)
        return DeliveryStatus.UNKNOWN
    due = outbound.give_up_or_retry(
        notification,
        sending.retry_policy(settings),
        outbound.Failure(error or "", permanent=status == DeliveryStatus.FAILED),
        now=now,
        jitter=jitter,
        dead=DeliveryStatus.DEAD,
    )
    if notification.status in (DeliveryStatus.FAILED, DeliveryStatus.DEAD):
        # A message that will not go is news to whoever watches its thread (not the sent ones: the
        # common outcome stays one UPDATE; the thread reads it, and a provider's receipt follows).
        receipts.status_changed(session=session, notification=notification, now=now)
    if notification.status == DeliveryStatus.FAILED:
        log.warning("notification %s failed: %s", notification_id, error)
        receipts.failed_for_good(session=session, notification=notification, now=now)
        return DeliveryStatus.FAILED
    if notification.status == DeliveryStatus.DEAD:
        log.error("notification %s is dead after %d attempts: %s", notification_id, attempt.number, error)
        return DeliveryStatus.DEAD
    outgoing.schedule_delivery(session, notification, due, now)
    return "retrying"


# The common outcome in one cached compare-and-set UPDATE (no SELECT ... FOR UPDATE, no ORM flush).
_RECORD_SENT = outbound.settled_statement(
    Notification.__table__,
    status=DeliveryStatus.SENT,
    sent_at=sa.bindparam("now", type_=Notification.__table__.c.sent_at.type),
    provider_message_id=sa.bindparam("provider_message_id"),
    sender=sa.bindparam("sender"),
    last_error=None,
    held_until=None,  # it went: no longer held
    held_by=None,
)


def _record_sent(session: UnitOfWork, attempt: sending.Attempt, now: datetime) -> str:
    sent = outbound.settled(
        session,
        _RECORD_SENT,
        attempt.message.notification_id,
        attempt.number,
        now=now,
        provider_message_id=(attempt.provider_id or "")[:128] or None,
        sender=sending.sender_of(attempt.message),
    )
    return DeliveryStatus.SENT if sent else "stale"


def recover_stuck_sends(*, session: UnitOfWork, now: datetime, settings) -> int:
    """Rows left `sending` by a worker that died mid-send: unknown (never re-sent by themselves).
    Also rows a dead worker's batch never reached, still `pending`: scheduled again. Returns how many."""
    cutoff = now - timedelta(seconds=settings.notification_stuck_seconds)
    stuck = outbound.stuck(session, Notification, cutoff=cutoff)
    for notification in stuck:
        # No idempotency at Twilio or over SMTP: held as unknown, never re-sent blindly.
        notification.status = DeliveryStatus.UNKNOWN
        notification.last_error = f"{OUTCOME_UNKNOWN_STOPPED}; may already have reached the lead"
    if stuck:
        log.warning("settled %d notification(s) stuck in sending", len(stuck))
    return len(stuck) + _reschedule_orphans(session, cutoff, now)


def _reschedule_orphans(session: UnitOfWork, cutoff: datetime, now: datetime) -> int:
    """Rows `pending` long past their due time with no open delivery job of their own: a batch whose
    worker died before reaching them (or a job the ledger gave up on). Each gets a job due now.

    A batch still running over a backlog may lose a row to this: its claim then finds the row taken
    and skips it, so the message still goes out once.
    """
    jobs = ScheduledJob.__table__.c
    has_open_job = (
        sa.select(jobs.id)
        .where(
            jobs.subject_type == "notification",
            jobs.subject_id == Notification.id,
            jobs.kind.in_(outgoing.DELIVER_KINDS),
            jobs.status.in_(OPEN_JOB_STATUSES),
        )
        .exists()
    )
    stmt = (
        sa.select(Notification)
        .where(
            Notification.status == DeliveryStatus.PENDING,
            Notification.next_attempt_at < cutoff,
            ~has_open_job,
        )
        .order_by(Notification.next_attempt_at)
        .limit(1000)
        .with_for_update(skip_locked=True)  # nothing on SQLite, whose writers are serialised anyway
    )
    orphans = list(session.scalars(stmt))
    for notification in orphans:
        outgoing.schedule_delivery(session, notification, now, now)
    if orphans:
        log.warning("rescheduled %d pending notification(s) that had no delivery job", len(orphans))
    return len(orphans)
