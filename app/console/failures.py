"""What failed, by the console's filters: dead/failed notifications, given-up ledger jobs and failed
webhook deliveries. One query per source, shared by the console's page and the `followup ... retry`
commands; retries go through each domain's own audited function."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa

from app.domains.outbound import service as notifications
from app.domains.outbound.models import Channel, Notification
from app.domains.webhooks import redeliver as webhooks
from app.domains.webhooks.models import FAILED, PENDING, WebhookDelivery, WebhookSubscription
from app.platform.db import UnitOfWork
from app.platform.scheduling import job_admin as scheduling
from app.platform.scheduling.models import GAVE_UP, ScheduledJob

NOTIFICATIONS, JOBS, WEBHOOKS = "notifications", "jobs", "webhooks"
SOURCES = (NOTIFICATIONS, JOBS, WEBHOOKS)
# The channels an outgoing message has (in-app messages are never sent, so never fail).
CHANNELS = tuple(c.value for c in Channel if c != Channel.IN_APP)
# The notification statuses an admin may retry, as the notifications domain decides them: a status
# it adds is listed here without a change to the console. A bulk retry sends again only those the
# domain's one rule allows (notifications.retry_many): never one whose outcome is unknown.
NOTIFICATION_STATUSES = tuple(str(s) for s in notifications.RETRYABLE)
UNKNOWN_OUTCOME_LEFT_OUT = (
    "{count} matching message(s) whose outcome is unknown may already have reached the lead: a bulk "
    "retry leaves them out. Retry each one from its row, confirming that it may be sent twice."
)
SAMPLE = 5
# The statuses each source's `status` filter accepts.
STATUSES = {NOTIFICATIONS: NOTIFICATION_STATUSES, JOBS: tuple(GAVE_UP), WEBHOOKS: (FAILED,)}


@dataclass(frozen=True)
class Filters:
    """The console's filter set; `kind` is a notification's kind, a job's kind or a webhook's event."""

    source: str = NOTIFICATIONS
    status: str | None = None
    kind: str | None = None
    channel: str | None = None
    recipient: str | None = None
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def without_source(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "source" and v not in (None, "")}

    def of(self, source: str) -> Filters:
        return replace(self, source=source)


def _contains(column, text: str | None):
    return sa.func.lower(column).contains(text.lower(), autoescape=True) if text else None


def _window(column, filters: Filters) -> list:
    conditions = []
    if filters.since:
        conditions.append(column >= filters.since)
    if filters.until:
        conditions.append(column < filters.until)
    return conditions


def _notification_conditions(session: UnitOfWork, clinic_id: int, f: Filters) -> list:
    statuses = [f.status] if f.status in NOTIFICATION_STATUSES else list(NOTIFICATION_STATUSES)
    conditions = [
        Notification.clinic_id == clinic_id,
        Notification.channel != Channel.IN_APP,
        Notification.status.in_(statuses),
        *_window(Notification.created_at, f),
    ]
    if f.kind:
        conditions.append(Notification.kind == f.kind)
    if f.channel:
        conditions.append(Notification.channel == f.channel)
    if f.recipient:  # the address is encrypted: an exact match through its blind index
        indexes = notifications.recipient_indexes(session=session, clinic_id=clinic_id, text=f.recipient)
        conditions.append(Notification.to_address_index.in_(indexes))
    if f.error:
        conditions.append(_contains(Notification.last_error, f.error))
    return conditions


def _notifications(session: UnitOfWork, clinic_id: int, f: Filters) -> sa.Select:
    return (
        sa.select(Notification)
        .where(*_notification_conditions(session, clinic_id, f))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )


def _jobs(_session: UnitOfWork, clinic_id: int, f: Filters) -> sa.Select:
    statuses = [f.status] if f.status in GAVE_UP else list(GAVE_UP)
    conditions = [ScheduledJob.clinic_id == clinic_id, ScheduledJob.status.in_(statuses),
                  *_window(ScheduledJob.due_at, f)]  # fmt: skip
    if f.kind:
        conditions.append(ScheduledJob.kind == f.kind)
    if f.error:
        conditions.append(_contains(ScheduledJob.last_error, f.error))
    return (
        sa.select(ScheduledJob)
        .where(*conditions)
        .order_by(ScheduledJob.due_at.desc(), ScheduledJob.id.desc())
    )


def _webhooks(_session: UnitOfWork, clinic_id: int, f: Filters) -> sa.Select:
    job_gave_up = sa.and_(WebhookDelivery.status == PENDING, ScheduledJob.status.in_(GAVE_UP))
    conditions = [
        WebhookDelivery.clinic_id == clinic_id,
        sa.or_(WebhookDelivery.status == FAILED, job_gave_up),
        *_window(WebhookDelivery.created_at, f),
    ]
    if f.kind:
        conditions.append(WebhookDelivery.event_type == f.kind)
    if f.recipient:
        conditions.append(_contains(WebhookSubscription.url, f.recipient))
    if f.error:
        conditions.append(
            sa.or_(
                _contains(WebhookDelivery.last_error, f.error), _contains(ScheduledJob.last_error, f.error)
            )
        )
    return (
        sa.select(WebhookDelivery, ScheduledJob, WebhookSubscription.url)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .outerjoin(ScheduledJob, ScheduledJob.id == WebhookDelivery.job_id)
        .where(*conditions)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    )


_QUERIES = {NOTIFICATIONS: _notifications, JOBS: _jobs, WEBHOOKS: _webhooks}


def _row(source: str, found) -> dict:
    if source == NOTIFICATIONS:
        n = found[0]
        return {"id": n.id, "status": n.status, "kind": n.kind, "channel": n.channel,
                "recipient": n.to_address, "error": n.last_error, "attempts": n.attempts,
                "at": n.created_at, "lead_id": n.lead_id}  # fmt: skip
    if source == JOBS:
        j = found[0]
        return {"id": j.id, "status": j.status, "kind": j.kind, "channel": j.queue,
                "recipient": j.subject, "error": j.last_error, "attempts": j.attempts,
                "at": j.due_at, "lead_id": None}  # fmt: skip
    delivery, job, url = found
    return {
        "id": delivery.id,
        "subscription_id": delivery.subscription_id,
        "status": webhooks.effective_status(delivery, job),
        "kind": delivery.event_type,
        "channel": "webhook",
        "recipient": url,
        "error": delivery.last_error or (job.last_error if job else None),
        "attempts": delivery.attempts,
        "at": delivery.created_at,
        "lead_id": None,
    }


def find(
    *, session: UnitOfWork, clinic_id: int, filters: Filters, limit: int, offset: int = 0
) -> tuple[list[dict], int]:
    """The failures of one source matching `filters`, newest first, and how many match in all."""
    query = _QUERIES[filters.source](session, clinic_id, filters)
    total = _count(session, query)
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return [_row(filters.source, r) for r in rows], total


def preview(*, session: UnitOfWork, clinic_id: int, filters: Filters) -> dict:
    """What a bulk retry of `filters` would touch: how many, a sample, and the warning that applies
    (how many unknown-outcome messages match and are left out)."""
    if filters.source != NOTIFICATIONS:
        sample, total = find(session=session, clinic_id=clinic_id, filters=filters, limit=SAMPLE)
        return {"count": total, "sample": sample, "warning": None}
    conditions = _notification_conditions(session, clinic_id, filters)
    query = sa.select(Notification).where(*conditions)
    bulk = query.where(notifications.bulk_retryable()).order_by(
        Notification.created_at.desc(), Notification.id.desc()
    )
    total = _count(session, bulk)
    left_out = _count(session, query) - total
    sample = [_row(NOTIFICATIONS, r) for r in session.execute(bulk.limit(SAMPLE)).all()]
    warning = UNKNOWN_OUTCOME_LEFT_OUT.format(count=left_out) if left_out else None
    return {"count": total, "sample": sample, "warning": warning}


def _count(session: UnitOfWork, query: sa.Select) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery()))


@dataclass(frozen=True)
class Item:
    """One failure: its source (notifications, jobs, webhooks) and its id there."""

    source: str
    id: int


def retry_one(*, session: UnitOfWork, clinic_id: int, item: Item, actor: str, now: datetime, confirmed: bool):
    """Retry (or redeliver) one failure through its domain's audited function; a notification whose
    outcome is unknown only when `confirmed` (the admin ticked that it may be sent twice)."""
    source, item_id = item.source, item.id
    if source == NOTIFICATIONS:
        return notifications.retry_notification(
            session=session,
            notification_id=item_id,
            clinic_id=clinic_id,
            actor=actor,
            now=now,
            confirm_may_duplicate=confirmed,
        )
    if source == JOBS:
        return scheduling.retry_job(
            session=session, job_id=item_id, clinic_id=clinic_id, actor=actor, now=now
        )
    return webhooks.redeliver(
        session=session, clinic_id=clinic_id, subscription_id=None, delivery_id=item_id, actor=actor, now=now
    )


def retry_matching(
    *, session: UnitOfWork, clinic_id: int, filters: Filters, actor: str, now: datetime
) -> int:
    """Retry every failure matching `filters` (each audited by its domain); returns how many.
    Notifications go through the domain's bulk rule, which leaves out unknown outcomes."""
    if filters.source == NOTIFICATIONS:
        conditions = _notification_conditions(session, clinic_id, filters)
        return notifications.retry_many(session=session, conditions=conditions, actor=actor, now=now)
    query = _QUERIES[filters.source](session, clinic_id, filters).order_by(None)
    ids = [row[0].id for row in session.execute(query)]
    for item_id in ids:
        retry_one(
            session=session, clinic_id=clinic_id, item=Item(filters.source, item_id), actor=actor, now=now,
            confirmed=False,
        )  # fmt: skip
    return len(ids)
