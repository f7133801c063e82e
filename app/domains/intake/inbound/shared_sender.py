"""Replies to the platform's shared sender (SMS_FROM, FOLLOWUP_WHATSAPP_FROM): every one kept.

Many clinics text from the shared number, so its To names no clinic. Each message records the From
it went from (`notifications.sender`), so a reply belongs to the clinic that last texted that phone
from the shared sender within `shared_sender_reply_days` (the newest if several did). A reply
nobody texted for waits in the platform operator's queue (`unclaimed_messages`)
until the operator hands it to a clinic: never nowhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.intake.inbound import messages as inbound
from app.domains.intake.inbound.models import UnclaimedMessage
from app.domains.outbound import service as notifications
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound


def receive(*, session: UnitOfWork, message: dict, shared: str, settings, now: datetime) -> None:
    """A verified message to the shared sender `shared` (not a keyword): the thread of the clinic
    that last texted its sender from it, else the operator's queue."""
    clinic_id = notifications.clinic_that_texted(
        session=session,
        channel=message["channel"],
        phone=message["from"],
        sender=shared,
        since=since(settings, now),
    )
    if clinic_id is not None:
        inbound.receive(session=session, clinic_id=clinic_id, message=message, now=now)
        return
    session.add(
        UnclaimedMessage(
            channel=message["channel"],
            message_id=message["message_id"],
            sender=message["from"],
            body=message["body"],
            received_at=now,
        )
    )


def since(settings, now: datetime) -> datetime:
    return now - timedelta(days=settings.shared_sender_reply_days)


def waiting(session: UnitOfWork) -> list[UnclaimedMessage]:
    """The operator's queue: messages not handed on yet, oldest first."""
    return list(
        session.scalars(
            sa.select(UnclaimedMessage)
            .where(UnclaimedMessage.handled_at.is_(None))
            .order_by(UnclaimedMessage.received_at, UnclaimedMessage.id)
        )
    )


def hand_to_clinic(
    *, session: UnitOfWork, unclaimed_id: int, clinic_id: int, now: datetime
) -> UnclaimedMessage:
    """The operator gives a waiting message to the clinic it is for: it becomes that clinic's inbound
    message (on the lead with that number, else an unknown sender's thread), and the queue's copy of
    its sender and text is cleared. NotFound for no such message or clinic; Conflict if handed on."""
    unclaimed = session.get(UnclaimedMessage, unclaimed_id, with_for_update=True)
    if unclaimed is None:
        raise NotFound("no such message")
    if not inbound.clinic_exists(session, clinic_id):
        raise NotFound("clinic not found", errors={"json": {"clinic_id": ["unknown"]}})
    if unclaimed.handled_at is not None:
        raise Conflict(
            "the message was handed to a clinic already", errors={"json": {"clinic_id": ["handed on"]}}
        )
    message = {
        "channel": unclaimed.channel,
        "from": unclaimed.sender or "",
        "body": unclaimed.body or "",
        "message_id": unclaimed.message_id,
        "received_at": unclaimed.received_at,
    }
    inbound.receive(session=session, clinic_id=clinic_id, message=message, now=now)
    unclaimed.handed_to_clinic_id, unclaimed.handled_at = clinic_id, now
    unclaimed.sender = unclaimed.body = None  # now the clinic's copy, which erasure reaches
    return unclaimed
