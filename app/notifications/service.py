"""Create notifications and serve a user's inbox."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.notifications.models import Channel, DeliveryStatus, Notification


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
) -> Notification:
    """An in-app notification, at most one per dedupe key (a redelivered job adds nothing)."""
    existing = _by_dedupe_key(session, dedupe_key)
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
        sent_at=now,
        created_at=now,
    )
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
        .offset((page - 1) * page_size)
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
