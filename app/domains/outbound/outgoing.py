"""Outgoing messages (email, SMS, WhatsApp, Instagram), queued in the caller's transaction: a row
rendered now (pending) and the ledger job that delivers it after commit
(app/domains/outbound/worker/ sends it); once per dedupe key."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.domains.auth.instagram import service as instagram
from app.domains.auth.models import Clinic
from app.domains.outbound import queries, recipients, rendering
from app.domains.outbound.models import Channel, DeliveryStatus, Notification
from app.platform.db import UnitOfWork, insert_once
from app.platform.db.protected import keys_of
from app.platform.scheduling import service as scheduling

DELIVER = "notification.deliver"
DELIVER_BULK = "notification.deliver_bulk"  # a campaign's message: the same delivery, in the bulk lane
DELIVER_KINDS = (DELIVER, DELIVER_BULK)
DELIVER_BATCH = "notification.deliver_batch"
# Transactional messages one unit of work queued together (the staff alerts of a batch of 50 timers):
# one job in the transactional lane, not one each; a job, a claim and an outcome commit per message
# cost the sender and the database more than the sends (bench/soak).
DELIVER_TOGETHER = "notification.deliver_together"
# Messages per batch job (queue_many). Celery's own cost per task (broker fetch, ack, pool hand-off,
# events) and the ledger's (count, claim, done) are each about as much as delivering several emails;
# a batch's transient failures come back as one batch of their own, so a small batch makes many tiny
# retry tasks. 200 spreads that thin while a 1,000-message send still makes 5 tasks for the worker's
# processes. (The claim and the outcomes go by notification_claim_window within the batch.)
BATCH_SIZE = 200


def _job_key(notification_id: int, due_at: datetime) -> str:
    # Unique per (row, due time): an admin retry or a backoff attempt gets a fresh job, while two
    # schedules of the same attempt collapse into one.
    return f"notification:{notification_id}:{due_at.isoformat()}"


def delivery_job(notification_id: int, clinic_id: int, due_at: datetime, *, bulk: bool) -> dict:
    """The ledger job of one attempt (`notification.deliver`, or `.deliver_bulk` for a campaign's
    message), as `schedule`'s keywords."""
    return {
        "kind": DELIVER_BULK if bulk else DELIVER,
        "due_at": due_at,
        "dedupe_key": _job_key(notification_id, due_at),
        "clinic_id": clinic_id,
        "subject_type": "notification",
        "subject_id": notification_id,
    }


def schedule_delivery(
    session: UnitOfWork, notification: Notification, due_at: datetime, now: datetime
) -> None:
    """Put the row's next attempt on the ledger, due at `due_at`."""
    notification.next_attempt_at = due_at
    job = delivery_job(notification.id, notification.clinic_id, due_at, bulk=bool(notification.bulk))
    session.schedule(scheduling.Job(now=now, **job))


@dataclass(frozen=True)
class OutgoingMessage:
    """An email or SMS (`channel`) to `to_address`: its template and merge context, the dedupe key
    that makes it once, its kind, whom it is for (a lead, a staff member) and `not_before`: held
    until then (quiet hours). `bulk`: a campaign's message, delivered after the transactional ones."""

    clinic_id: int
    channel: str
    to_address: str | None
    template: str
    context: dict
    dedupe_key: str
    kind: str = "message"
    lead_id: int | None = None
    recipient_user_id: int | None = None
    not_before: datetime | None = None
    bulk: bool = False
    held_by: str | None = None  # what holds it until `not_before` (delivery rules' HOLD_REASONS)


def send(*, session: UnitOfWork, message: OutgoingMessage, now: datetime) -> Notification:
    """The `message` in the caller's transaction: rendered now, delivered after commit; once per
    dedupe key."""
    clinic_id, channel, dedupe_key = message.clinic_id, message.channel, message.dedupe_key
    to_address = (message.to_address or "")[:254]
    clinic = session.get(Clinic, clinic_id)
    context = {"clinic_name": clinic.name if clinic else "", **message.context}
    subject, text, html = rendering.render(message.template, channel, context)
    not_before = message.not_before
    due = not_before if not_before is not None and not_before > now else now
    notification = Notification(
        clinic_id=clinic_id,
        recipient_user_id=message.recipient_user_id,
        lead_id=message.lead_id,
        to_address=to_address,
        to_address_index=recipients.index_of(keys=keys_of(session), clinic_id=clinic_id, address=to_address),
        channel=channel,
        kind=message.kind[:32],
        template=message.template,
        title=subject[:300],
        body=text,
        body_html=html,
        context=_jsonable(context),
        status=DeliveryStatus.PENDING,
        attempts=0,
        dedupe_key=dedupe_key,
        bulk=message.bulk,
        next_attempt_at=due,  # written with the row, not by an UPDATE after it
        held_until=due if due > now else None,
        held_by=message.held_by if due > now else None,
        created_at=now,
    )
    if insert_once(session, notification, unique="dedupe_key") is None:
        return queries.by_dedupe_key(session, dedupe_key)  # sent before, or by a concurrent twin
    job = delivery_job(notification.id, clinic_id, due, bulk=message.bulk)
    session.schedule(scheduling.Job(now=now, merge=deliveries_together, **job))  # grouped at the commit
    return notification


def deliveries_together(jobs: list[scheduling.Job]) -> list[scheduling.Job]:
    """The delivery jobs of a unit's new messages, as its commit writes them (`Job.merge`): a
    clinic's messages of one lane due together (at once, or held to the same time) go as one batch
    job; a message alone, as its own `notification.deliver` (or `.deliver_bulk`). In a savepoint,
    which may roll back alone, each message's job is written at once: its own."""
    groups: dict[tuple, list[scheduling.Job]] = defaultdict(list)
    for job in jobs:
        held_until = job.due_at if job.due_at > job.now else None
        groups[(job.clinic_id, job.kind == DELIVER_BULK, held_until)].append(job)
    merged = []
    for (clinic_id, bulk, _), group in groups.items():
        due_at, now = max(job.due_at for job in group), group[0].now  # due at once: as the unit commits
        if len(group) == 1:
            specs = [delivery_job(group[0].subject_id, clinic_id, due_at, bulk=bulk)]
        else:
            created = [Created(job.subject_id, clinic_id, due_at) for job in group]
            specs = batch_jobs(created, kind=DELIVER_BATCH if bulk else DELIVER_TOGETHER)
        merged += [scheduling.Job(now=now, **spec) for spec in specs]
    return merged


def _jsonable(context: dict) -> dict:
    return json.loads(json.dumps(context, default=str))


# --- many messages at once -----------------------------------------------------------------------------
#
# A campaign, a digest run or a bulk action queues hundreds of messages in one transaction. Row by row
# that is ~6 round trips each (dedupe lookup, clinic, savepoint, insert, ledger insert, ledger reload);
# here it is one cached multi-row INSERT ... ON CONFLICT (dedupe_key) DO NOTHING for the messages and
# one ledger INSERT for their delivery jobs (at the commit), whatever the count. Same rows, same jobs, same
# once-per-dedupe-key rule as send.

_MESSAGE_FIELDS = frozenset(
    {"clinic_id", "to_address", "template", "context", "dedupe_key", "kind", "lead_id", "recipient_user_id",
     "not_before"}
)  # fmt: skip


def queue_many(*, session: UnitOfWork, channel: str, messages: Iterable[dict], now: datetime) -> list[int]:
    """Many messages of one channel in the caller's transaction (each dict takes send's keywords but
    session, channel and now).

    Returns the ids of the rows it created, in the order given; a dedupe key that exists (or repeats
    within `messages`) adds nothing.
    """
    specs = _unique_specs(messages)
    if not specs:
        return []
    if not queries.can_insert_many(session):
        return [_outgoing_one(session, channel, spec, now).id for spec in specs]
    names = _clinic_names(session, {spec["clinic_id"] for spec in specs})
    keys = keys_of(session)
    rows = [_row_values(spec, channel, names, now) | _index_value(spec, keys) for spec in specs]
    created = {row.dedupe_key: row for row in queries.insert_many(session, rows)}
    for job in batch_jobs(created.values()):
        session.schedule(scheduling.Job(now=now, **job))
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


def _outgoing_one(session: UnitOfWork, channel: str, spec: dict, now: datetime) -> Notification:
    message = OutgoingMessage(
        channel=channel, **{**spec, "kind": spec.get("kind") or "message", "bulk": True}
    )
    return send(session=session, message=message, now=now)


def _clinic_names(session: UnitOfWork, clinic_ids: set[int]) -> dict[int, str]:
    return dict(session.execute(sa.select(Clinic.id, Clinic.name).where(Clinic.id.in_(clinic_ids))).all())


def _index_value(spec: dict, keys: str) -> dict:
    address = (spec["to_address"] or "")[:254]
    return {"to_address_index": recipients.index_of(keys=keys, clinic_id=spec["clinic_id"], address=address)}


def _row_values(spec: dict, channel: str, names: dict[int, str], now: datetime) -> dict:
    """The notification row of one message, rendered now (as _outgoing does)."""
    context = {"clinic_name": names.get(spec["clinic_id"], ""), **spec["context"]}
    subject, text, html = rendering.render(spec["template"], channel, context)
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
        "bulk": True,  # many at once: a digest run's, a campaign's
        "created_at": now,
    }


@dataclass(frozen=True)
class Created:
    """A message row just created, as batch_jobs needs it."""

    id: int
    clinic_id: int
    next_attempt_at: datetime


def batch_jobs(created: Iterable, *, kind: str = DELIVER_BATCH) -> list[dict]:
    """One batch job (`notification.deliver_batch`, or the transactional `kind`) per BATCH_SIZE new
    rows of one clinic due at one time."""
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
                    "kind": kind,
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


@dataclass(frozen=True)
class MessageToLead:
    """A lead's email or SMS (`channel`), its text already rendered (`subject`, `body`): the dedupe
    key that makes it once, its kind and template, more merge context, and `not_before`: held until
    then (quiet hours)."""

    channel: str
    subject: str | None
    body: str
    dedupe_key: str
    kind: str = "lead_message"
    template: str = "lead_message"
    context: dict | None = None
    not_before: datetime | None = None
    bulk: bool = False  # a campaign's (a sequence's) message: the bulk lane
    as_written: str | None = None  # `body` before its merge fields were filled in (kept: AS_WRITTEN)
    held_by: str | None = None  # what holds it until `not_before` (delivery rules' HOLD_REASONS)


# A lead message's context keeps its text as written (a template's, a step's, a person's): a link
# in it is the clinic's own, one only in the filled-in body came from a merge field (engagement).
AS_WRITTEN = "as_written"


def _address_of(session: UnitOfWork, lead, channel: str) -> str:
    """Where a lead's message goes: its email, its phone (SMS, WhatsApp), or its Instagram-scoped id."""
    if channel == Channel.INSTAGRAM:
        contact = instagram.contact_of_lead(session, lead.id)
        return contact.igsid if contact is not None else ""
    return (lead.email if channel == Channel.EMAIL else lead.phone) or ""


def send_to_lead(*, session: UnitOfWork, lead, message: MessageToLead, now: datetime) -> Notification:
    """A message to a lead by email or SMS (its address or phone); a lead without one gets a failed row."""
    channel = message.channel
    if channel not in (Channel.EMAIL, Channel.SMS, Channel.INSTAGRAM, Channel.WHATSAPP):
        raise ValueError(f"leads are written to by email, sms, instagram or whatsapp, not {channel!r}")
    context = {"subject": message.subject, "body": message.body, "first_name": lead.first_name}
    if message.as_written is not None:
        context[AS_WRITTEN] = message.as_written
    outgoing = OutgoingMessage(
        clinic_id=lead.clinic_id,
        channel=channel,
        to_address=_address_of(session, lead, channel),
        template=message.template,
        context={**context, **(message.context or {})},
        dedupe_key=message.dedupe_key,
        kind=message.kind,
        lead_id=lead.id,
        not_before=message.not_before,
        bulk=message.bulk,
        held_by=message.held_by,
    )
    return send(session=session, message=outgoing, now=now)
