"""Engagement as the clinic reads it: a lead's messages with their opens and clicks, and the
clinic's totals over a period (the delivery stats' engagement part). Ids, counts and times only."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa

from app.domains.engagement.models import MessageClick, MessageOpen
from app.domains.leads import service as leads
from app.domains.outbound.models import Channel, DeliveryStatus, Notification
from app.platform.db import UnitOfWork
from app.platform.roles import Actor


def of_lead(*, session: UnitOfWork, actor: Actor, lead_id: int) -> dict:
    """The lead's engaged messages (opened or clicked), newest first; another clinic's lead is a 404."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    opens = {
        row.notification_id: row
        for row in session.scalars(sa.select(MessageOpen).where(MessageOpen.lead_id == lead.id))
    }
    clicks: dict[int, list[MessageClick]] = defaultdict(list)
    for row in session.scalars(
        sa.select(MessageClick).where(MessageClick.lead_id == lead.id).order_by(MessageClick.link)
    ):
        clicks[row.notification_id].append(row)
    ids = sorted(set(opens) | set(clicks), reverse=True)
    channels = (
        dict(
            session.execute(
                sa.select(Notification.id, Notification.channel).where(Notification.id.in_(ids))
            ).all()
        )
        if ids
        else {}
    )
    messages = []
    for notification_id in ids:
        opened = opens.get(notification_id)
        messages.append(
            {
                "notification_id": notification_id,
                "channel": channels.get(notification_id),
                "opened_at": opened.first_opened_at if opened else None,
                "opens": opened.opens if opened else 0,
                "machine_opens": opened.machine_opens if opened else 0,
                "clicks": [
                    {"link": c.link, "clicks": c.clicks, "first_clicked_at": c.first_clicked_at}
                    for c in clicks.get(notification_id, [])
                ],
            }
        )
    return {"lead_id": lead.id, "messages": messages}


def of_clinic(*, session: UnitOfWork, actor: Actor, since: datetime) -> dict:
    """Messages to leads sent since `since`: how many, how many opened (by a person, or counted),
    opened only by a mail proxy, and clicked."""
    sent = (
        sa.select(Notification.id, Notification.channel)
        .where(
            Notification.clinic_id == actor.clinic_id,
            Notification.lead_id.is_not(None),
            Notification.channel.in_([Channel.EMAIL.value, Channel.SMS.value]),
            Notification.status == DeliveryStatus.SENT,
            Notification.created_at >= since,
        )
        .subquery()
    )
    opened = sa.select(MessageOpen.notification_id).where(MessageOpen.first_opened_at.is_not(None))
    machine_only = sa.select(MessageOpen.notification_id).where(
        MessageOpen.first_opened_at.is_(None), MessageOpen.machine_opens > 0
    )
    clicked = sa.select(MessageClick.notification_id)
    row = session.execute(
        sa.select(
            sa.func.count().filter(sent.c.channel == Channel.EMAIL.value),
            sa.func.count().filter(sent.c.channel == Channel.SMS.value),
            sa.func.count().filter(sent.c.id.in_(opened)),
            sa.func.count().filter(sent.c.id.in_(machine_only)),
            sa.func.count().filter(sent.c.id.in_(clicked)),
        ).select_from(sent)
    ).one()
    return {
        "since": since,
        "emails_sent": row[0],
        "sms_sent": row[1],
        "emails_opened": row[2],
        "emails_opened_by_machine_only": row[3],
        "messages_clicked": row[4],
    }
