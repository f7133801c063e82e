"""Notifications: the in-app inbox, outgoing email and SMS (delivery, retries, dead letters), preferences."""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import clock as app_clock
from app.audit import service as audit
from app.auth.models import Clinic, User
from app.auth.roles import Role
from app.db import after_commit, insert_now, page_offset
from app.delivery import rules as delivery_rules
from app.delivery import service as outbound
from app.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from app.intake import rules as signing
from app.notifications import channels, rate_limits, rules
from app.notifications.models import Channel, DeliveryStatus, Notification, NotificationPreference
from app.scheduling import service as scheduling
from app.scheduling.models import OPEN as OPEN_JOB_STATUSES
from app.scheduling.models import ScheduledJob

log = logging.getLogger(__name__)


def notify_in_app(
    *,
    session: Session,
    clinic_id: int,
    user_id: int,
    kind: str,
    title: str,
    body: str,
    link: str | None,
    dedupe_key: str,
    now: datetime,
    origin: dict | None = None,
    known_new: bool = False,
) -> Notification:
    """An in-app notification, at most one per dedupe key (a redelivered job adds nothing).

    `known_new`: the key names something made in this very transaction (an automation step), so
    it cannot exist yet: no lookup, no savepoint.

    `origin` (kept in the row's context) says what made it, e.g. an automation rule's step."""
    existing = None if known_new else _by_dedupe_key(session, dedupe_key)
    if existing is not None:
        return existing
    notification = Notification(
        clinic_id=clinic_id,
        recipient_user_id=user_id,
        channel=Channel.IN_APP,
        kind=kind,
        title=title[:300],
        body=body,
        link=link,
        status=DeliveryStatus.SENT,  # in-app is delivered by being stored
        attempts=1,
        dedupe_key=dedupe_key,
        context={"origin": origin} if origin else None,
        sent_at=now,
        created_at=now,
    )
    if known_new:
        return insert_now(session, notification)  # its id, for the caller's record
    try:
        with session.begin_nested():  # a concurrent twin loses on the unique key, not the whole transaction
            session.add(notification)
    except IntegrityError:
        return _by_dedupe_key(session, dedupe_key)
    return notification


def _by_dedupe_key(session: Session, dedupe_key: str) -> Notification | None:
    return session.scalar(sa.select(Notification).where(Notification.dedupe_key == dedupe_key))


def inbox(
    *, session: Session, user_id: int, unread_only: bool, page: int, page_size: int
) -> tuple[list[Notification], int]:
    """A user's in-app notifications: unread first, then newest first."""
    conditions = [Notification.recipient_user_id == user_id, Notification.channel == Channel.IN_APP]
    if unread_only:
        conditions.append(Notification.read_at.is_(None))
    total = session.scalar(sa.select(sa.func.count()).select_from(Notification).where(*conditions))
    unread_first = sa.case((Notification.read_at.is_(None), 0), else_=1)
    rows = session.scalars(
        sa.select(Notification)
        .where(*conditions)
        .order_by(unread_first, Notification.created_at.desc(), Notification.id.desc())
        .limit(page_size)
        .offset(page_offset(page, page_size))
    ).all()
    return list(rows), total


def mark_read(*, session: Session, user_id: int, notification_id: int, now: datetime) -> Notification:
    """Mark one of the user's own notifications read (someone else's is 404)."""
    notification = session.get(Notification, notification_id)
    if notification is None or notification.recipient_user_id != user_id:
        raise NotFound(f"notification {notification_id} not found")
    if notification.read_at is None:
        notification.read_at = now
    return notification


# --- outgoing email and SMS -------------------------------------------------------------------------
#
# Send once. A message is a row (pending → sending → sent | failed | dead) delivered by ledger jobs of
# kind `notification.deliver`. The send itself never runs inside a database transaction (an SMTP
# timeout would hold the row lock, and on SQLite the whole database's write lock, for its duration):
#   1. the job's handler (`claim_delivery`, inside the ledger's claim transaction) moves the row
#      pending → sending and attempts+1; both commit together with the job's `done`;
#   2. after that commit, in the same worker task, the message is sent (`deliver_claimed`);
#   3. a second short transaction records the outcome by compare-and-set on (sending, attempts):
#      sent; failed (permanent error); or, for a transient error, pending again with a new job due
#      after a backoff (dead once attempts run out).
# A duplicate delivery of the job, or any other job for the row, finds it no longer pending and does
# nothing; a row already `sent` is never touched again. A worker killed between 1 and 3 leaves the row
# `sending`: `recover_stuck_sends` finds it later. An SMS is simply re-sent: the provider dedupes on
# the idempotency token (the row's dedupe key). An email is not: SMTP has no idempotency, and a
# message handed over without a reply may well have arrived, so it becomes `failed` with "outcome
# unknown" and an admin decides (retry API). The same holds for an SMTP reply lost after DATA.

DELIVER = "notification.deliver"
DELIVER_BATCH = "notification.deliver_batch"
# Messages per batch job (send_many). Celery's own cost per task (broker fetch, ack, pool hand-off,
# events) is about as much CPU as claiming, sending and recording one email, so a campaign delivered
# one task per message spends half its CPU on the transport. 50 spreads that thin while a 1,000-message
# send still makes 20 tasks, enough to keep every worker process busy.
BATCH_SIZE = 50
OUTCOME_UNKNOWN_STOPPED = "outcome unknown: worker stopped mid-send"
_MAX_ERROR = outbound.MAX_ERROR


def _job_key(notification_id: int, due_at: datetime) -> str:
    # Unique per (row, due time): an admin retry or a backoff attempt gets a fresh job, while two
    # schedules of the same attempt collapse into one.
    return f"notification:{notification_id}:{due_at.isoformat()}"


def _delivery_job(notification_id: int, clinic_id: int, due_at: datetime) -> dict:
    """The `notification.deliver` ledger job of one attempt, as `schedule`'s keywords."""
    return {
        "kind": DELIVER,
        "due_at": due_at,
        "dedupe_key": _job_key(notification_id, due_at),
        "clinic_id": clinic_id,
        "subject_type": "notification",
        "subject_id": notification_id,
    }


def _schedule_delivery(session: Session, notification: Notification, due_at: datetime, now: datetime) -> None:
    notification.next_attempt_at = due_at
    scheduling.schedule(
        session=session, now=now, **_delivery_job(notification.id, notification.clinic_id, due_at)
    )


def _outgoing(
    *,
    session: Session,
    clinic_id: int,
    channel: str,
    to_address: str | None,
    template: str,
    context: dict,
    dedupe_key: str,
    kind: str,
    now: datetime,
    lead_id: int | None,
    recipient_user_id: int | None,
    not_before: datetime | None,
) -> Notification:
    existing = _by_dedupe_key(session, dedupe_key)
    if existing is not None:
        return existing
    clinic = session.get(Clinic, clinic_id)
    context = {"clinic_name": clinic.name if clinic else "", **context}
    subject, text, html = render(template, channel, context)
    notification = Notification(
        clinic_id=clinic_id,
        recipient_user_id=recipient_user_id,
        lead_id=lead_id,
        to_address=(to_address or "")[:254],
        channel=channel,
        kind=kind[:32],
        template=template,
        title=subject[:300],
        body=text,
        body_html=html,
        context=_jsonable(context),
        status=DeliveryStatus.PENDING,
        attempts=0,
        dedupe_key=dedupe_key,
        created_at=now,
    )
    try:
        with session.begin_nested():  # a concurrent twin loses on the unique key, not the whole transaction
            session.add(notification)
    except IntegrityError:
        return _by_dedupe_key(session, dedupe_key)
    due = not_before if not_before is not None and not_before > now else now
    _schedule_delivery(session, notification, due, now)
    return notification


def _jsonable(context: dict) -> dict:
    return json.loads(json.dumps(context, default=str))


def send_email(
    *,
    session: Session,
    clinic_id: int,
    to_address: str,
    template: str,
    context: dict,
    dedupe_key: str,
    now: datetime,
    kind: str = "message",
    lead_id: int | None = None,
    recipient_user_id: int | None = None,
    not_before: datetime | None = None,
) -> Notification:
    """An email in the caller's transaction: rendered now, delivered after commit; once per dedupe key."""
    return _outgoing(
        session=session,
        clinic_id=clinic_id,
        channel=Channel.EMAIL,
        to_address=to_address,
        template=template,
        context=context,
        dedupe_key=dedupe_key,
        kind=kind,
        now=now,
        lead_id=lead_id,
        recipient_user_id=recipient_user_id,
        not_before=not_before,
    )


def send_sms(
    *,
    session: Session,
    clinic_id: int,
    to_address: str,
    template: str,
    context: dict,
    dedupe_key: str,
    now: datetime,
    kind: str = "message",
    lead_id: int | None = None,
    recipient_user_id: int | None = None,
    not_before: datetime | None = None,
) -> Notification:
    """An SMS in the caller's transaction: rendered now, delivered after commit; once per dedupe key."""
    return _outgoing(
        session=session,
        clinic_id=clinic_id,
        channel=Channel.SMS,
        to_address=to_address,
        template=template,
        context=context,
        dedupe_key=dedupe_key,
        kind=kind,
        now=now,
        lead_id=lead_id,
        recipient_user_id=recipient_user_id,
        not_before=not_before,
    )


# --- many messages at once -----------------------------------------------------------------------------
#
# A campaign, a digest run or a bulk action queues hundreds of messages in one transaction. Row by row
# that is ~6 round trips each (dedupe lookup, clinic, savepoint, insert, ledger insert, ledger reload);
# here it is one cached multi-row INSERT ... ON CONFLICT (dedupe_key) DO NOTHING for the messages and
# one `schedule_many` for their delivery jobs, whatever the count. Same rows, same jobs, same
# once-per-dedupe-key rule as send_email/send_sms.

_MESSAGE_FIELDS = frozenset(
    {"clinic_id", "to_address", "template", "context", "dedupe_key", "kind", "lead_id", "recipient_user_id",
     "not_before"}
)  # fmt: skip


def send_emails(*, session: Session, messages: Iterable[dict], now: datetime) -> list[int]:
    """Many emails in the caller's transaction (each dict takes send_email's keywords but session/now).

    Returns the ids of the rows it created, in the order given; a dedupe key that exists (or repeats
    within `messages`) adds nothing.
    """
    return send_many(session=session, channel=Channel.EMAIL, messages=messages, now=now)


def send_many(*, session: Session, channel: str, messages: Iterable[dict], now: datetime) -> list[int]:
    """send_emails for any outgoing channel (email or sms)."""
    specs = _unique_specs(messages)
    if not specs:
        return []
    if session.get_bind().dialect.name not in ("postgresql", "sqlite"):
        return [_outgoing_one(session, channel, spec, now).id for spec in specs]  # no ON CONFLICT
    names = _clinic_names(session, {spec["clinic_id"] for spec in specs})
    rows = [_row_values(spec, channel, names, now) for spec in specs]
    created = {row.dedupe_key: row for row in _insert_rows(session, rows)}
    scheduling.schedule_many(session=session, jobs=_batch_jobs(created.values()), now=now)
    return [created[row["dedupe_key"]].id for row in rows if row["dedupe_key"] in created]


def _unique_specs(messages: Iterable[dict]) -> list[dict]:
    """The messages checked, in order; a dedupe key repeated within them is one message (the first)."""
    specs, seen = [], set()
    for spec in messages:
        _checked_spec(spec)
        if spec["dedupe_key"] not in seen:
            seen.add(spec["dedupe_key"])
            specs.append(spec)
    return specs


def _checked_spec(spec: dict) -> dict:
    unknown = set(spec) - _MESSAGE_FIELDS
    if unknown:
        raise TypeError(f"unknown message fields: {', '.join(sorted(unknown))}")
    missing = {"clinic_id", "to_address", "template", "context", "dedupe_key"} - set(spec)
    if missing:
        raise TypeError(f"missing message fields: {', '.join(sorted(missing))}")
    return spec


def _outgoing_one(session: Session, channel: str, spec: dict, now: datetime) -> Notification:
    return _outgoing(
        session=session,
        channel=channel,
        now=now,
        kind=spec.get("kind") or "message",
        lead_id=spec.get("lead_id"),
        recipient_user_id=spec.get("recipient_user_id"),
        not_before=spec.get("not_before"),
        **{k: spec[k] for k in ("clinic_id", "to_address", "template", "context", "dedupe_key")},
    )


def _clinic_names(session: Session, clinic_ids: set[int]) -> dict[int, str]:
    return dict(session.execute(sa.select(Clinic.id, Clinic.name).where(Clinic.id.in_(clinic_ids))).all())


def _row_values(spec: dict, channel: str, names: dict[int, str], now: datetime) -> dict:
    """The notification row of one message, rendered now (as _outgoing does)."""
    context = {"clinic_name": names.get(spec["clinic_id"], ""), **spec["context"]}
    subject, text, html = render(spec["template"], channel, context)
    not_before = spec.get("not_before")
    return {
        "clinic_id": spec["clinic_id"],
        "recipient_user_id": spec.get("recipient_user_id"),
        "lead_id": spec.get("lead_id"),
        "to_address": (spec["to_address"] or "")[:254],
        "channel": channel,
        "kind": (spec.get("kind") or "message")[:32],
        "template": spec["template"],
        "title": subject[:300],
        "body": text,
        "body_html": html,
        "context": _jsonable(context),
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "dedupe_key": spec["dedupe_key"],
        "next_attempt_at": not_before if not_before is not None and not_before > now else now,
        "created_at": now,
    }


def _insert_statement(dialect: str):
    # Built once per dialect: a Core INSERT on the table is a cached statement, and executemany turns
    # it into multi-row INSERTs ("insertmanyvalues"). DO NOTHING: a twin leaves the transaction intact.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = Notification.__table__
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id, table.c.dedupe_key, table.c.clinic_id, table.c.next_attempt_at)
    )


_INSERT = {name: _insert_statement(name) for name in ("postgresql", "sqlite")}


def _insert_rows(session: Session, rows: list[dict]) -> list:
    session.flush()  # rows may refer to objects still pending in this session (a new clinic, a lead)
    return session.execute(_INSERT[session.get_bind().dialect.name], rows).all()


@dataclass(frozen=True)
class _Created:
    id: int
    clinic_id: int
    next_attempt_at: datetime


def _batch_jobs(created: Iterable) -> list[dict]:
    """One `notification.deliver_batch` job per BATCH_SIZE new rows of one clinic due at one time."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for row in created:
        groups[(row.clinic_id, row.next_attempt_at)].append(row.id)
    jobs = []
    for (clinic_id, due_at), ids in groups.items():
        ids.sort()
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            jobs.append(
                {
                    "kind": DELIVER_BATCH,
                    "due_at": due_at,
                    # A row belongs to one batch when it is created: its first id makes the key unique.
                    "dedupe_key": f"notification-batch:{chunk[0]}:{due_at.isoformat()}",
                    "clinic_id": clinic_id,
                    "subject_type": "notification",  # the first row; the batch is the payload
                    "subject_id": chunk[0],
                    "payload": {"notification_ids": chunk},
                }
            )
    return jobs


def send_to_lead(
    *,
    session: Session,
    lead,
    channel: str,
    subject: str,
    body: str,
    dedupe_key: str,
    now: datetime,
    kind: str = "lead_message",
    template: str = "lead_message",
    context: dict | None = None,
    not_before: datetime | None = None,
) -> Notification:
    """A message to a lead by email or SMS (its address or phone); a lead without one gets a failed row."""
    send = send_email if channel == Channel.EMAIL else send_sms
    if channel not in (Channel.EMAIL, Channel.SMS):
        raise ValueError(f"leads are written to by email or sms, not {channel!r}")
    return send(
        session=session,
        clinic_id=lead.clinic_id,
        to_address=(lead.email if channel == Channel.EMAIL else lead.phone) or "",
        template=template,
        context={"subject": subject, "body": body, "first_name": lead.first_name, **(context or {})},
        dedupe_key=dedupe_key,
        now=now,
        kind=kind,
        lead_id=lead.id,
        not_before=not_before,
    )


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
    scheduling.schedule(session=session, now=now, **_delivery_job(row.id, row.clinic_id, until))
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
            rows = [_Created(r.notification_id, r.clinic_id, due) for r in retries]
            scheduling.schedule_many(session=session, jobs=_batch_jobs(rows), now=now)
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
                session=session, jobs=[_delivery_job(r.id, r.clinic_id, now) for r in rows], now=now
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
        _schedule_delivery(session, notification, due, now)
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
            _schedule_delivery(session, notification, now, now)
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
            jobs.kind == DELIVER,
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
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    orphans = list(session.scalars(stmt))
    for notification in orphans:
        _schedule_delivery(session, notification, now, now)
    if orphans:
        log.warning("rescheduled %d pending notification(s) that had no delivery job", len(orphans))
    return len(orphans)


# --- admin: list and retry failed deliveries -------------------------------------------------------

RETRYABLE = (DeliveryStatus.FAILED, DeliveryStatus.DEAD)


def _delivery_filter(clinic_id: int, status: str | None, channel: str | None, since: datetime | None):
    conditions = [Notification.clinic_id == clinic_id, Notification.channel != Channel.IN_APP]
    if status:
        conditions.append(Notification.status == status)
    if channel:
        conditions.append(Notification.channel == channel)
    if since:
        conditions.append(Notification.created_at >= since)
    return conditions


def list_deliveries(
    *,
    session: Session,
    clinic_id: int,
    status: str | None,
    channel: str | None,
    since: datetime | None,
    page: int,
    page_size: int,
) -> tuple[list[Notification], int]:
    """The clinic's outgoing messages (not in-app), newest first, by status, channel and creation time."""
    conditions = _delivery_filter(clinic_id, status, channel, since)
    total = session.scalar(sa.select(sa.func.count()).select_from(Notification).where(*conditions))
    rows = session.scalars(
        sa.select(Notification)
        .where(*conditions)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(page_size)
        .offset(page_offset(page, page_size))
    ).all()
    return list(rows), total


def _requeue(session: Session, notification: Notification, actor: str, now: datetime) -> None:
    before = {
        "status": notification.status,
        "attempts": notification.attempts,
        "last_error": notification.last_error,
    }
    notification.status, notification.attempts = DeliveryStatus.PENDING, 0
    audit.record(
        session=session,
        clinic_id=notification.clinic_id,
        actor=actor,
        action="notification.retry",
        subject_type="notification",
        subject_id=notification.id,
        at=now,
        before=before,
        after={"status": DeliveryStatus.PENDING, "attempts": 0},
    )
    _schedule_delivery(session, notification, now, now)


def retry_notification(
    *, session: Session, notification_id: int, clinic_id: int, actor: str, now: datetime
) -> Notification:
    """Send a failed or dead message again (attempts reset; audited); any other status is a 409."""
    stmt = sa.select(Notification).where(
        Notification.id == notification_id, Notification.clinic_id == clinic_id
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    notification = session.scalars(stmt).first()
    if notification is None or notification.channel == Channel.IN_APP:
        raise NotFound(f"notification {notification_id} not found")
    if notification.status not in RETRYABLE:
        raise Conflict(
            f"notification {notification_id} is {notification.status}; only failed or dead ones retry"
        )
    _requeue(session, notification, actor, now)
    return notification


def retry_notifications(
    *,
    session: Session,
    clinic_id: int,
    actor: str,
    status: str | None,
    channel: str | None,
    since: datetime | None,
    now: datetime,
) -> int:
    """Requeue every failed/dead message matching the filter (each audited); returns how many."""
    statuses = [status] if status else list(RETRYABLE)
    conditions = [*_delivery_filter(clinic_id, None, channel, since), Notification.status.in_(statuses)]
    stmt = sa.select(Notification).where(*conditions).order_by(Notification.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    for notification in rows:
        _requeue(session, notification, actor, now)
    return len(rows)


# --- the SMS provider's delivery-status webhook ------------------------------------------------------

DELIVERED_STATES = ("delivered",)
UNDELIVERED_STATES = ("undelivered", "failed")


def verify_signature(
    *, redis, secret: str | None, body: bytes, timestamp: str | None, signature: str | None, now: datetime
) -> None:
    """Signed like a web form (app/intake/rules.py): X-Followup-Signature is the hex HMAC-SHA256 of
    f"{timestamp}.{raw body}", X-Followup-Timestamp unix seconds within 5 minutes of now, and each
    signature accepted once (remembered in Redis past the window). Why: a receipt captured on the way
    and sent again later must not turn a message that was sent into a failed one."""
    if not secret:
        raise NotFound("the SMS status webhook is not configured (SMS_WEBHOOK_SECRET)")
    if not (signature and timestamp):
        raise Unauthorized("missing X-Followup-Timestamp or X-Followup-Signature")
    if not signing.timestamp_fresh(timestamp, now):
        raise Unauthorized("stale X-Followup-Timestamp: sign with the current time")
    if not signing.signature_matches(secret, timestamp, body, signature):
        raise Unauthorized("bad signature")
    digest = signature.strip().removeprefix("sha256=").lower()
    if not redis.set(
        f"followup:sms-receipt-signature:{digest}", "1", nx=True, ex=signing.REPLAY_MEMORY_SECONDS
    ):
        raise Unauthorized("replayed receipt: this signature was already used")


def sms_status_update(
    *,
    session: Session,
    redis,
    secret: str | None,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    form: dict,
    now: datetime,
) -> dict:
    """Apply a signed, fresh, first-seen delivery receipt: delivered stamps delivered_at;
    undelivered/failed fails the row."""
    verify_signature(redis=redis, secret=secret, body=body, timestamp=timestamp, signature=signature, now=now)
    sid, state = (form.get("MessageSid") or "").strip(), (form.get("MessageStatus") or "").strip().lower()
    if not sid or not state:
        raise ValidationFailed({"MessageSid": ["required"]} if not sid else {"MessageStatus": ["required"]})
    notification = session.scalars(
        sa.select(Notification).where(
            Notification.provider_message_id == sid[:128], Notification.channel == Channel.SMS
        )
    ).first()
    if notification is None:
        return {"updated": False}  # not ours (or purged): answered 200 so the provider stops retrying
    if state in DELIVERED_STATES:
        notification.delivered_at = notification.delivered_at or now
    elif state in UNDELIVERED_STATES:
        code, text = form.get("ErrorCode") or "", form.get("ErrorMessage") or ""
        notification.status = DeliveryStatus.FAILED
        notification.last_error = f"provider reports {state}: error {code} {text}".strip()[:_MAX_ERROR]
    else:
        return {"updated": False, "status": notification.status}  # queued, sent, ...: nothing to record
    return {"updated": True, "status": notification.status}


# --- rendering ----------------------------------------------------------------------------------------

_TEMPLATES = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a missing context value is a bug to see, not a blank in a patient's email
    keep_trailing_newline=False,
)


def render(template: str, channel: str, context: dict) -> tuple[str, str, str | None]:
    """(subject, text, html) of a template for a channel; an SMS has only the text (`<name>.sms.txt`)."""
    if channel == Channel.SMS:
        text = _TEMPLATES.get_template(f"{template}.sms.txt").render(context).strip()
        return text[:300], text, None
    subject = " ".join(_TEMPLATES.get_template(f"{template}.subject.txt").render(context).split())
    text = _TEMPLATES.get_template(f"{template}.txt").render(context)
    html = _TEMPLATES.get_template(f"{template}.html").render(context)
    return subject, text, html


# --- staff preferences --------------------------------------------------------------------------------


def get_preferences(*, session: Session, user_id: int) -> dict:
    """A user's channels per kind (defaults filled in), quiet hours and SMS number."""
    row = session.get(NotificationPreference, user_id)
    chosen = row.channels if row else {}
    return {
        "channels": {kind: rules.channels_for(kind, chosen) for kind in rules.STAFF_KINDS},
        "quiet_hours": {"start": row.quiet_start, "end": row.quiet_end} if row and row.quiet_start else None,
        "sms_number": row.sms_number if row else None,
        "timezone": _user_timezone(session, user_id),
        "summary_frequency": _summary_frequency(session, user_id, row),
    }


def _summary_frequency(session: Session, user_id: int, row: NotificationPreference | None) -> str:
    """How often the user gets the analytics summary: clinic admins choose (daily by default); others
    never get it."""
    user = session.get(User, user_id)
    if user is None or user.role != Role.CLINIC_ADMIN:
        return "off"
    return (row.summary_frequency if row else None) or rules.DEFAULT_SUMMARY_FREQUENCY


def put_preferences(*, session: Session, user_id: int, clinic_id: int, data: dict, now: datetime) -> dict:
    """Replace the given parts of a user's preferences (channels per kind merge; others replace)."""
    row = session.get(NotificationPreference, user_id)
    if row is None:
        row = NotificationPreference(user_id=user_id, clinic_id=clinic_id, channels={}, updated_at=now)
        session.add(row)
    if "channels" in data:
        row.channels = {**(row.channels or {}), **data["channels"]}
    if "quiet_hours" in data:
        quiet = data["quiet_hours"]
        row.quiet_start, row.quiet_end = (quiet["start"], quiet["end"]) if quiet else (None, None)
    if "sms_number" in data:
        row.sms_number = data["sms_number"]
    if "summary_frequency" in data:
        user = session.get(User, user_id)
        if data["summary_frequency"] != "off" and (user is None or user.role != Role.CLINIC_ADMIN):
            raise ValidationFailed("summary_frequency", "only clinic admins receive the summary email")
        row.summary_frequency = data["summary_frequency"]
    wants_sms = [k for k, chosen in (row.channels or {}).items() if rules.SMS in chosen]
    if wants_sms and not row.sms_number:
        raise ValidationFailed(
            "sms_number", f"give an SMS number to receive {', '.join(sorted(wants_sms))} by SMS"
        )
    row.updated_at = now
    session.flush()
    return get_preferences(session=session, user_id=user_id)


def _user_timezone(session: Session, user_id: int) -> str:
    user = session.get(User, user_id)
    if user is None:
        return "UTC"
    return user.timezone or session.get(Clinic, user.clinic_id).timezone or "UTC"


def notify_staff(
    *,
    session: Session,
    clinic_id: int,
    user_id: int | None,
    kind: str,
    title: str,
    body: str,
    link: str | None,
    dedupe_key: str,
    now: datetime,
    origin: dict | None = None,
    known_new: bool = False,
) -> Notification | None:
    """Tell a staff member by their preferences: in-app always (silent, at once); email/SMS copies on the
    channels they chose for `kind`, deferred to the end of their quiet hours. Returns the in-app row."""
    in_app = notify_in_app(
        session=session,
        clinic_id=clinic_id,
        user_id=user_id,
        kind=kind,
        title=title,
        body=body,
        link=link,
        dedupe_key=dedupe_key,
        now=now,
        origin=origin,
        known_new=known_new,
    )
    if user_id is None:
        return in_app
    copies = [c for c in _channels_of(session, user_id, kind) if c in (rules.EMAIL, rules.SMS)]
    if not copies:
        return in_app
    user = session.get(User, user_id)
    prefs = session.get(NotificationPreference, user_id)
    not_before = _after_quiet_hours(session, user_id, prefs, now)
    context = {"title": title, "body": body, "link": link, "user_name": user.name, "origin": origin}
    for channel in copies:
        address = user.email if channel == rules.EMAIL else (prefs.sms_number if prefs else None)
        if not address:
            continue
        send = send_email if channel == rules.EMAIL else send_sms
        send(
            session=session,
            clinic_id=clinic_id,
            to_address=address,
            template="staff_alert",
            context=context,
            dedupe_key=f"{dedupe_key}:{channel}",
            now=now,
            kind=kind,
            recipient_user_id=user_id,
            not_before=not_before,
        )
    return in_app


def _channels_of(session: Session, user_id: int, kind: str) -> list[str]:
    # No autoflush: a user's preferences are never new in a transaction that notifies them (an
    # edited row is read from the identity map), and flushing what the caller has pending here
    # costs a flush of its own instead of sharing the commit's.
    with session.no_autoflush:
        prefs = session.get(NotificationPreference, user_id)
    return rules.channels_for(kind, prefs.channels if prefs else None)


def _after_quiet_hours(session: Session, user_id: int, prefs, now: datetime) -> datetime | None:
    if prefs is None or not prefs.quiet_start:
        return None
    return rules.quiet_until(now, _user_timezone(session, user_id), prefs.quiet_start, prefs.quiet_end)


def staff_wants(*, session: Session, user_id: int, kind: str, channel: str) -> bool:
    """Whether the user receives `kind` on `channel` (e.g. the digest by email)."""
    return channel in _channels_of(session, user_id, kind)


def quiet_until_for(*, session: Session, user_id: int, now: datetime) -> datetime | None:
    """The end of the user's quiet hours if `now` falls in them, else None."""
    return _after_quiet_hours(session, user_id, session.get(NotificationPreference, user_id), now)
