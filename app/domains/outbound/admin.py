"""Clinic admins' view of outgoing messages: list them, retry failed and dead ones (audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.domains.outbound import outgoing
from app.domains.outbound.models import Channel, DeliveryStatus, Notification
from app.platform.audit import service as audit
from app.platform.db import PageRequest, UnitOfWork, page_of
from app.platform.errors import Conflict, NotFound

RETRYABLE = (DeliveryStatus.FAILED, DeliveryStatus.DEAD, DeliveryStatus.UNKNOWN)
# A message (SMS or email) whose outcome is unknown may already have reached the lead: sent again
# only when the admin says so explicitly for that one message (confirm_may_duplicate), never by a
# bulk retry: the API's and the console's bulk retries both go through retry_many.
MAY_DUPLICATE = (DeliveryStatus.UNKNOWN,)
BULK_RETRYABLE = tuple(s for s in RETRYABLE if s not in MAY_DUPLICATE)
MAY_DUPLICATE_WARNING = (
    "may already have reached the lead: retry with confirm_may_duplicate true to send it again"
)


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
    session: UnitOfWork,
    clinic_id: int,
    status: str | None,
    channel: str | None,
    since: datetime | None,
    paging: PageRequest,
) -> tuple[list[Notification], int]:
    """The clinic's outgoing messages (not in-app), newest first, by status, channel and creation time."""
    conditions = _delivery_filter(clinic_id, status, channel, since)
    rows, total = page_of(
        session,
        Notification,
        conditions,
        order_by=(Notification.created_at.desc(), Notification.id.desc()),
        paging=paging,
    )
    return rows, total


def _requeue(session: UnitOfWork, notification: Notification, actor: str, now: datetime) -> None:
    before = {
        "status": notification.status,
        "attempts": notification.attempts,
        "last_error": notification.last_error,
    }
    notification.status, notification.attempts = DeliveryStatus.PENDING, 0
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=notification.clinic_id,
            actor=actor,
            action="notification.retry",
            subject_type="notification",
            subject_id=notification.id,
            at=now,
            before=before,
            after={"status": DeliveryStatus.PENDING, "attempts": 0},
        ),
    )
    outgoing.schedule_delivery(session, notification, now, now)


def retry_notification(
    *,
    session: UnitOfWork,
    notification_id: int,
    clinic_id: int,
    actor: str,
    now: datetime,
    confirm_may_duplicate: bool = False,
) -> Notification:
    """Send a failed, dead or (confirmed) unknown message again (attempts reset; audited); any other
    status is a 409."""
    stmt = (
        sa.select(Notification)
        .where(Notification.id == notification_id, Notification.clinic_id == clinic_id)
        .with_for_update()  # nothing on SQLite, whose writers are serialised anyway
    )
    notification = session.scalars(stmt).first()
    if notification is None or notification.channel == Channel.IN_APP:
        raise NotFound(f"notification {notification_id} not found")
    if notification.status not in RETRYABLE:
        raise Conflict(
            f"notification {notification_id} is {notification.status}; "
            "only failed, dead or unknown ones retry",
            code="invalid_state",
        )
    if notification.status in MAY_DUPLICATE and not confirm_may_duplicate:
        raise Conflict(
            f"notification {notification_id} {MAY_DUPLICATE_WARNING}", code="confirm_may_duplicate"
        )
    _requeue(session, notification, actor, now)
    return notification


@dataclass(frozen=True)
class RetryFilter:
    """Which messages a bulk retry asks for: by status, channel and creation time (None: any)."""

    status: str | None = None
    channel: str | None = None
    since: datetime | None = None


def retry_notifications(
    *, session: UnitOfWork, clinic_id: int, actor: str, matching: RetryFilter, now: datetime
) -> int:
    """Requeue every failed/dead message `matching` (each audited); returns how many."""
    conditions = _delivery_filter(clinic_id, matching.status, matching.channel, matching.since)
    return retry_many(session=session, conditions=conditions, actor=actor, now=now)


def bulk_retryable():
    """The SQL condition of the messages a bulk retry may send again: failed or dead, never one
    whose outcome is unknown."""
    return Notification.status.in_(BULK_RETRYABLE)


def retry_many(*, session: UnitOfWork, conditions: list, actor: str, now: datetime) -> int:
    """Requeue every message matching `conditions` that a bulk retry may send again: failed or dead,
    never one whose outcome is unknown (each of those is retried alone, confirmed). The one rule of
    every bulk retry, the API's and the console's; each requeue audited. Returns how many."""
    stmt = (
        sa.select(Notification)
        .where(*conditions, Notification.channel != Channel.IN_APP, bulk_retryable())
        .order_by(Notification.id)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.scalars(stmt))
    for notification in rows:
        _requeue(session, notification, actor, now)
    return len(rows)
