"""Delivery of outgoing messages: the `notification.deliver` jobs on top of app/delivery's primitive.

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
`sending`: `recover_stuck_sends` finds it later. An SMS is simply re-sent: the provider dedupes on
the idempotency token (the row's dedupe key). An email is not: SMTP has no idempotency, and a
message handed over without a reply may well have arrived, so it becomes `failed` with "outcome
unknown" and an admin decides (retry API). The same holds for an SMTP reply lost after DATA."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import clock as app_clock
from app.auth.models import Clinic
from app.db import after_commit
from app.delivery import rules as delivery_rules
from app.delivery import service as outbound
from app.notifications import channels, outgoing, rate_limits
from app.notifications.models import Channel, DeliveryStatus, Notification
from app.scheduling import service as scheduling
from app.scheduling.models import OPEN as OPEN_JOB_STATUSES
from app.scheduling.models import ScheduledJob

log = logging.getLogger(__name__)


OUTCOME_UNKNOWN_STOPPED = "outcome unknown: worker stopped mid-send"

_CLAIM = outbound.claim_statement(
    Notification.__table__,
    [getattr(Notification.__table__.c, name) for name in
     ("id", "clinic_id", "channel", "to_address", "title", "body", "body_html", "dedupe_key", "attempts")],
)  # fmt: skip
_CLINIC_SETTINGS = sa.select(Clinic.__table__.c.settings).where(
    Clinic.__table__.c.id == sa.bindparam("clinic_id")
)


def claim_delivery(*, session: Session, job, now: datetime, db) -> None:
    """The `notification.deliver` handler: pending → sending (commits with the job); send after commit
    and record the outcome in a unit of work of `db` (the app's Database, its settings with it)."""
    row = outbound.claim(session, _CLAIM, job.subject_id, now)
    if row is None:
        return  # sent, being sent, or given up: a duplicate or stale job does nothing
    if _deferred_by_rate_limit(session, row, now):
        return
    message = _message_of(session, row, db.settings)
    after_commit(session, partial(deliver_claimed, db=db, message=message, attempt=row.attempts))


def _deferred_by_rate_limit(session: Session, row, now: datetime, cache: dict | None = None) -> bool:
    """Over the clinic's provider rate limit (rate_limits.py): back to pending, not counted as an
    attempt, with a delivery job due when the window ends. Whether it was deferred."""
    held = rate_limits.held_until(session, clinic_id=row.clinic_id, channel=row.channel, now=now, cache=cache)
    if held is None:
        return False
    until, why = held
    session.execute(
        sa.update(Notification)
        .where(Notification.id == row.id)
        .values(
            status=DeliveryStatus.PENDING,
            attempts=Notification.attempts - 1,
            sending_at=None,
            next_attempt_at=until,
            last_error=why,
        )
        .execution_options(synchronize_session=False)
    )
    scheduling.schedule(session=session, now=now, **outgoing.delivery_job(row.id, row.clinic_id, until))
    return True


def _message_of(session: Session, row, settings, senders: dict | None = None) -> channels.Outgoing:
    """What to send for a claimed row (`row` has the notification's columns); `senders` caches the
    From address per clinic across one batch."""
    if row.channel == Channel.SMS:
        sender = settings.sms_from or ""
    elif senders is not None and row.clinic_id in senders:
        sender = senders[row.clinic_id]
    else:
        sender = _email_sender(session, row.clinic_id, settings)
        if senders is not None:
            senders[row.clinic_id] = sender
    return channels.Outgoing(
        notification_id=row.id,
        channel=row.channel,
        to=row.to_address or "",
        sender=sender,
        subject=row.title,
        text=row.body,
        html=row.body_html,
        dedupe_key=row.dedupe_key,
    )


def _email_sender(session: Session, clinic_id: int, settings) -> str:
    clinic_settings = session.connection().execute(_CLINIC_SETTINGS, {"clinic_id": clinic_id}).scalar() or {}
    return channels.format_sender(
        clinic_settings.get("email_from_name"), clinic_settings.get("email_from") or settings.email_from
    )


def claim_batch(*, session: Session, job, now: datetime, db) -> None:
    """The `notification.deliver_batch` handler: nothing to write here; once the job's `done` commits,
    the worker delivers the batch's rows one by one (`deliver_batch`).

    Each row is still claimed pending → sending in its own transaction right before its send and
    settled right after, exactly as a `notification.deliver` job does: a crash leaves only the message
    in flight `sending` (outcome unknown), never the rest of the batch. Rows the batch never reached
    (worker killed) stay `pending` with no open job; `recover_stuck_sends` schedules them again.
    """
    ids = [int(i) for i in (job.payload or {}).get("notification_ids", [])]
    after_commit(session, partial(deliver_batch, db=db, notification_ids=ids))


def deliver_batch(*, db, notification_ids: list[int], clock=app_clock.now) -> dict[str, int]:
    """Claim, send and record each row in turn over the worker's kept-alive connection; never raises.

    One transaction per message: it records the previous message's outcome and claims the next one
    (two commits per message would double the fsyncs, the main cost on PostgreSQL). Each claim still
    commits before its send. A batch stops at half the task's soft time limit (a provider timing out
    on every message) and hands the rest back as single delivery jobs. Returns how many rows ended how.
    """
    deadline = time.monotonic() + db.settings.task_soft_time_limit / 2
    outcomes: Counter[str] = Counter()
    senders: dict[int, str] = {}
    limits: dict[int, dict | None] = {}  # each clinic's settings, for its provider rate limits
    unrecorded: _Attempt | None = None  # sent, its outcome to be written with the next claim
    retries: list[_Retry] = []  # transient failures, rescheduled together at the end
    for index, notification_id in enumerate(notification_ids):
        if time.monotonic() > deadline:
            outcomes["handed back"] += _hand_back(db, notification_ids[index:], clock())
            break
        try:
            recorded, claimed = _record_and_claim(
                db, unrecorded, notification_id, clock(), senders, retries, limits
            )
        except Exception:
            log.exception("could not claim notification %s; handing the batch's rest back", notification_id)
            if unrecorded is not None:  # rolled back with the claim: try it on its own
                outcomes[_settle(db, unrecorded, clock, retries)] += 1
                unrecorded = None
            outcomes["handed back"] += _hand_back(db, notification_ids[index:], clock())
            break
        if recorded is not None:
            outcomes[recorded] += 1
        unrecorded = None
        if claimed is None:
            outcomes["skipped"] += 1  # sent, being sent or given up: another job got there first
            continue
        message, attempt = claimed
        unrecorded = _Attempt(message, attempt, *_send(message, db.settings))
    if unrecorded is not None:
        outcomes[_settle(db, unrecorded, clock, retries)] += 1
    _schedule_retries(db, retries, clock())
    return dict(outcomes)


@dataclass(frozen=True)
class _Retry:
    notification_id: int
    clinic_id: int
    due_at: datetime


def _schedule_retries(db, retries: list[_Retry], now: datetime) -> None:
    """A batch's transient failures as one batch job, due when the last of their backoffs ends (a
    backoff is a minimum wait); never raises: rows it leaves without a job, the orphan sweep finds."""
    if not retries:
        return
    due = max(r.due_at for r in retries)
    ids = sorted(r.notification_id for r in retries)
    try:
        with db.unit_of_work() as session:
            session.execute(
                sa.update(Notification)
                .where(Notification.id.in_(ids), Notification.status == DeliveryStatus.PENDING)
                .values(next_attempt_at=due)
                .execution_options(synchronize_session=False)
            )
            rows = [outgoing.Created(r.notification_id, r.clinic_id, due) for r in retries]
            scheduling.schedule_many(session=session, jobs=outgoing.batch_jobs(rows), now=now)
    except Exception:
        log.exception("could not reschedule %d notification(s); recover_stuck_sends will", len(ids))


def _record_and_claim(
    db,
    unrecorded: _Attempt | None,
    notification_id: int,
    now: datetime,
    senders: dict,
    retries: list,
    limits: dict,
) -> tuple[str | None, tuple[channels.Outgoing, int] | None]:
    """One transaction: the previous attempt's outcome (if any), then pending → sending of the next.

    If it fails, both roll back, and the retry it may have added is dropped with them."""
    mark = len(retries)
    try:
        return _record_and_claim_once(db, unrecorded, notification_id, now, senders, retries, limits)
    except Exception:
        del retries[mark:]
        raise


def _record_and_claim_once(
    db,
    unrecorded: _Attempt | None,
    notification_id: int,
    now: datetime,
    senders: dict,
    retries: list,
    limits: dict,
) -> tuple[str | None, tuple[channels.Outgoing, int] | None]:
    with db.unit_of_work() as session:
        recorded = _record(session, now, unrecorded, db.settings, retries) if unrecorded is not None else None
        row = outbound.claim(session, _CLAIM, notification_id, now)
        if row is not None and _deferred_by_rate_limit(session, row, now, cache=limits):
            row = None
        claimed = (_message_of(session, row, db.settings, senders), row.attempts) if row is not None else None
    return recorded, claimed


def _hand_back(db, notification_ids: list[int], now: datetime) -> int:
    """Give rows a batch did not get to a delivery job each, due now; never raises (the sweep remains)."""
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
                .values(next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
            scheduling.schedule_many(
                session=session, jobs=[outgoing.delivery_job(r.id, r.clinic_id, now) for r in rows], now=now
            )
            return len(rows)
    except Exception:
        log.exception(
            "could not hand %d notification(s) back; recover_stuck_sends will", len(notification_ids)
        )
        return 0


@dataclass(frozen=True)
class _Attempt:
    """One send of a claimed message and how it went (status: sent, failed or pending = retry)."""

    message: channels.Outgoing
    number: int  # the row's attempts after its claim: the outcome is written only if still so
    status: str
    provider_id: str | None = None
    error: str | None = None


def deliver_claimed(*, db, message: channels.Outgoing, attempt: int, clock=app_clock.now) -> str:
    """Send a claimed message (no transaction open), then record the outcome; never raises.

    `clock` stamps the outcome: the send takes real time (up to several socket timeouts), so the
    claim's `now` would date a backoff from before the send.
    """
    return _settle(db, _Attempt(message, attempt, *_send(message, db.settings)), clock)


def _send(message: channels.Outgoing, settings) -> tuple[str, str | None, str | None]:
    """(status, provider id, error) of one send; never raises."""
    try:
        return DeliveryStatus.SENT, channels.send(message, settings), None
    except channels.PermanentError as exc:
        return DeliveryStatus.FAILED, None, str(exc)
    except channels.OutcomeUnknown as exc:
        if message.channel == Channel.SMS:  # the idempotency token makes a re-send safe
            return DeliveryStatus.PENDING, None, str(exc)
        return DeliveryStatus.FAILED, None, f"outcome unknown: {exc}"
    except channels.TransientError as exc:
        return DeliveryStatus.PENDING, None, str(exc)
    except Exception as exc:  # a bug or an odd provider answer: retried, and dead if it persists
        log.exception("sending notification %s failed unexpectedly", message.notification_id)
        return DeliveryStatus.PENDING, None, f"{type(exc).__name__}: {exc}"


def _settle(db, attempt: _Attempt, clock, retries: list | None = None) -> str:
    """Record an attempt's outcome in a transaction of its own; never raises (the row then stays
    `sending`, and recover_stuck_sends settles it: an email as outcome unknown)."""
    return outbound.settle(
        partial(_record, attempt=attempt, settings=db.settings, retries=retries),
        db=db,
        clock=clock,
        what=f"notification {attempt.message.notification_id}",
    )


def _record(session: Session, now: datetime, attempt: _Attempt, settings, retries: list | None = None) -> str:
    return record_outcome(
        settings=settings,
        retries=retries,
        session=session,
        notification_id=attempt.message.notification_id,
        attempt=attempt.number,
        status=attempt.status,
        provider_message_id=attempt.provider_id,
        error=attempt.error,
        now=now,
        jitter=random.random(),
    )


def _retry_policy(settings) -> delivery_rules.RetryPolicy:
    return delivery_rules.RetryPolicy(
        max_attempts=settings.notification_max_attempts,
        base_seconds=settings.notification_retry_base_seconds,
        cap_seconds=settings.notification_retry_max_seconds,
    )


def record_outcome(
    *,
    session: Session,
    notification_id: int,
    attempt: int,
    status: str,
    provider_message_id: str | None,
    error: str | None,
    now: datetime,
    jitter: float,
    settings,
    retries: list | None = None,
) -> str:
    """Write one attempt's outcome if the row is still that attempt's (`sending`, same attempts).

    A transient error makes the row pending again with a delivery job after the backoff; given a
    `retries` list, the job is left to the caller and the row appended to the list instead."""
    if status == DeliveryStatus.SENT:
        return _record_sent(session, notification_id, attempt, provider_message_id, now)
    notification = outbound.locked_attempt(session, Notification, notification_id, attempt)
    if notification is None:
        return "stale"
    due = outbound.give_up_or_retry(
        notification,
        _retry_policy(settings),
        error=error or "",
        permanent=status == DeliveryStatus.FAILED,
        now=now,
        jitter=jitter,
        dead=DeliveryStatus.DEAD,
    )
    if notification.status == DeliveryStatus.FAILED:
        log.warning("notification %s failed: %s", notification_id, error)
        return DeliveryStatus.FAILED
    if notification.status == DeliveryStatus.DEAD:
        log.error("notification %s is dead after %d attempts: %s", notification_id, attempt, error)
        return DeliveryStatus.DEAD
    if retries is None:
        outgoing.schedule_delivery(session, notification, due, now)
    else:  # the caller schedules these together (a batch's retries travel as one batch again)
        retries.append(_Retry(notification.id, notification.clinic_id, due))
    return "retrying"


# The common outcome in one cached compare-and-set UPDATE (no SELECT ... FOR UPDATE, no ORM flush).
_RECORD_SENT = outbound.settled_statement(
    Notification.__table__,
    status=DeliveryStatus.SENT,
    sent_at=sa.bindparam("now", type_=Notification.__table__.c.sent_at.type),
    provider_message_id=sa.bindparam("provider_message_id"),
    last_error=None,
)


def _record_sent(
    session: Session, notification_id: int, attempt: int, provider_message_id: str | None, now: datetime
) -> str:
    sent = outbound.settled(
        session,
        _RECORD_SENT,
        notification_id,
        attempt,
        now=now,
        provider_message_id=(provider_message_id or "")[:128] or None,
    )
    return DeliveryStatus.SENT if sent else "stale"


def recover_stuck_sends(*, session: Session, now: datetime, settings) -> int:
    """Rows left `sending` by a worker that died mid-send: SMS re-sent (provider dedupes), email failed.
    Also rows a dead worker's batch never reached, still `pending`: scheduled again. Returns how many."""
    cutoff = now - timedelta(seconds=settings.notification_stuck_seconds)
    stuck = outbound.stuck(session, Notification, cutoff=cutoff)
    for notification in stuck:
        if notification.channel == Channel.SMS:
            notification.status = DeliveryStatus.PENDING
            notification.last_error = "worker stopped mid-send; re-sent with the same idempotency token"
            outgoing.schedule_delivery(session, notification, now, now)
        else:
            notification.status, notification.last_error = DeliveryStatus.FAILED, OUTCOME_UNKNOWN_STOPPED
    if stuck:
        log.warning("settled %d notification(s) stuck in sending", len(stuck))
    return len(stuck) + _reschedule_orphans(session, cutoff, now)


def _reschedule_orphans(session: Session, cutoff: datetime, now: datetime) -> int:
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
            jobs.kind == outgoing.DELIVER,
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
