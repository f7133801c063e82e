"""The in-app inbox: notifications stored for a staff member, listed and marked read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.domains.outbound import queries
from app.domains.outbound.models import Channel, DeliveryStatus, Notification
from app.platform.db import PageRequest, UnitOfWork, insert_now, insert_once, new_row, page_of
from app.platform.errors import NotFound
from app.platform.stream import feed


@dataclass(frozen=True)
class StaffNotice:
    """What a staff member is told: a `kind` (their preferences choose its channels), a title, a
    body and a link, the dedupe key that makes it once, and `origin` (kept in the row's context):
    what made it, e.g. an automation rule's step."""

    kind: str
    title: str
    body: str
    link: str | None
    dedupe_key: str
    origin: dict | None = None
    # What the recipient's live stream carries besides the notification (a task's and its lead's
    # summaries, shaped per reader when sent): never stored in the notification itself.
    about: dict | None = None
    # The dedupe key names something made in this very transaction (an automation step): no
    # notification can have it yet (notify_in_app's `known_new`).
    known_new: bool = False


# The stream event an in-app notification of a kind is (anything else: "notification").
STREAM_TYPES = {
    "new_task": "task.assigned",
    "reminder": "task.due_soon",
    "overdue": "task.overdue",
    "sla_warning": "sla.warning",
}


def _stream_type(notice: StaffNotice) -> str:
    if notice.kind == "escalation" and (notice.origin or {}).get("kind") == "sla":
        return "sla.breach"
    return STREAM_TYPES.get(notice.kind, "notification")


def _tell_stream(session: UnitOfWork, notification: Notification, notice: StaffNotice, now: datetime) -> None:
    """Every new in-app notification is also an event of its recipient's live stream."""
    about = notice.about or {}
    shown = {
        "id": notification.id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "link": notification.link,
        "created_at": notification.created_at.isoformat(),
    }
    note = feed.StreamNote(
        type=_stream_type(notice),
        data={**about, "notification": shown},
        lead_id=(about.get("lead") or {}).get("id") or (about.get("task") or {}).get("lead_id"),
        notification_id=notification.id,
    )
    feed.record(
        session=session, clinic_id=notification.clinic_id, user_id=notification.recipient_user_id,
        note=note, now=now,
    )  # fmt: skip


def notify_in_app(
    *,
    session: UnitOfWork,
    clinic_id: int,
    user_id: int,
    notice: StaffNotice,
    now: datetime,
    known_new: bool = False,
) -> Notification:
    """An in-app notification, at most one per dedupe key (a redelivered job adds nothing).

    `known_new`: the key names something made in this very transaction (an automation step), so
    it cannot exist yet: no lookup, no savepoint."""
    dedupe_key, origin = notice.dedupe_key, notice.origin
    notification = new_row(  # every column set, no instrumented setter per attribute
        Notification,
        clinic_id=clinic_id,
        recipient_user_id=user_id,
        channel=Channel.IN_APP,
        kind=notice.kind,
        title=notice.title[:300],
        body=notice.body,
        link=notice.link,
        status=DeliveryStatus.SENT,  # in-app is delivered by being stored
        attempts=1,
        dedupe_key=dedupe_key,
        context={"origin": origin} if origin else None,
        sent_at=now,
        created_at=now,
    )
    if known_new:
        insert_now(session, notification)  # its id, for the caller's record
    elif insert_once(session, notification, unique="dedupe_key") is None:
        return queries.by_dedupe_key(session, dedupe_key)  # a redelivered job's, or a concurrent twin's
    if user_id is not None:
        _tell_stream(session, notification, notice, now)
    return notification


def inbox(
    *, session: UnitOfWork, user_id: int, unread_only: bool, paging: PageRequest
) -> tuple[list[Notification], int]:
    """A user's in-app notifications: unread first, then newest first."""
    conditions = [Notification.recipient_user_id == user_id, Notification.channel == Channel.IN_APP]
    if unread_only:
        conditions.append(Notification.read_at.is_(None))
    unread_first = sa.case((Notification.read_at.is_(None), 0), else_=1)
    rows, total = page_of(
        session,
        Notification,
        conditions,
        order_by=(unread_first, Notification.created_at.desc(), Notification.id.desc()),
        paging=paging,
    )
    return rows, total


def mark_read(*, session: UnitOfWork, user_id: int, notification_id: int, now: datetime) -> Notification:
    """Mark one of the user's own notifications read (someone else's is 404)."""
    notification = session.get(Notification, notification_id)
    if notification is None or notification.recipient_user_id != user_id:
        raise NotFound(f"notification {notification_id} not found")
    if notification.read_at is None:
        notification.read_at = now
    return notification
