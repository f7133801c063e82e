"""Reading one thread, newest first, and each staff member's read mark.

A page is keyset-paginated on the message id (the order messages were recorded in), its cursor
opaque to the client. An outbound message's delivery status is its notification's, as the provider's
receipts left it: queued, sent, delivered, read (an email opened), failed (with the reason) or
cancelled (a send-time guard held it back). An inbound one was received.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Load

from app.domains.conversations import media, service
from app.domains.conversations.models import INBOUND, Conversation, ConversationMessage, ConversationRead
from app.domains.leads import service as leads
from app.domains.leads.models import Lead
from app.domains.outbound.models import DeliveryStatus, Notification, waiting_hold
from app.platform import phi_policy
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Forbidden, NotFound, ValidationFailed
from app.platform.roles import Actor

READ_EVENT = "conversation.read"
STATUS_EVENT = "conversation.status"
_QUEUED = (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value)
_FAILED = (DeliveryStatus.FAILED.value, DeliveryStatus.DEAD.value)


def encode_cursor(values: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None, keys: tuple[str, ...]) -> dict | None:
    """The position a cursor stands for; 400 naming `cursor` when it is none of ours."""
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor", "not a cursor this list gave") from None
    if not isinstance(values, dict) or any(key not in values for key in keys):
        raise ValidationFailed("cursor", "not a cursor this list gave")
    return values


def delivery_status(
    message: ConversationMessage, notification: Notification | None
) -> tuple[str, str | None]:
    """(status, failure reason) as the provider reported it."""
    if message.direction == INBOUND:
        return "received", None
    if notification is None or notification.status in _QUEUED:
        return "queued", None
    if notification.status in _FAILED:
        return "failed", notification.last_error
    if notification.status == DeliveryStatus.CANCELLED.value:
        return "cancelled", notification.last_error
    if notification.opened_at is not None:
        return "read", None
    if notification.delivered_at is not None:
        return "delivered", None
    return "sent", None  # sent, or unknown: it left and may have reached the family


def held(notification: Notification | None) -> dict:
    """`held_until` and `held_by` of an outbound message (nulls for an inbound one)."""
    if notification is None:
        return {"held_until": None, "held_by": None}
    return waiting_hold(notification)


def tell_status(*, session: UnitOfWork, notification: Notification, now: datetime) -> None:
    """A provider's receipt changed a message of a thread: its lead's owner's stream says so (the
    status and failure reason, no text). Registered with the outbound receipts (app/handlers.py)."""
    if notification.lead_id is None:
        return  # a staff notice: no thread
    message = session.scalar(
        sa.select(ConversationMessage).where(ConversationMessage.notification_id == notification.id)
    )
    if message is None:
        return  # not a message to a lead's thread (a staff notice)
    conversation = session.get(Conversation, message.conversation_id)
    lead = session.get(Lead, conversation.lead_id) if conversation.lead_id is not None else None
    if lead is None or lead.assigned_to_id is None:
        return
    status, reason = delivery_status(message, notification)
    data = {
        "conversation_id": conversation.id,
        "message_id": message.id,
        "status": status,
        "failure_reason": reason,
    }
    service.tell(
        session=session,
        conversation=conversation,
        user_id=lead.assigned_to_id,
        event=(STATUS_EVENT, data),
        now=now,
    )


def lead_conversation(*, session: UnitOfWork, clinic_id: int, lead_id: int) -> Conversation | None:
    """The lead's conversation (None before its first message); 404 for another clinic's lead."""
    lead = leads.get_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
    return session.scalar(
        sa.select(Conversation).where(Conversation.clinic_id == clinic_id, Conversation.lead_id == lead.id)
    )


def thread_page(
    *, session: UnitOfWork, actor: Actor, lead_id: int, page: tuple[str | None, int], now: datetime
) -> dict:
    """A page (`cursor`, `limit`) of the lead's thread, newest first, with the caller's unread count;
    the read is audited, with whether the answer carried the texts (PHI)."""
    cursor, limit = page
    conversation = lead_conversation(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead.conversation.read",
            subject_type="lead",
            subject_id=lead_id,
            after={"phi": phi_policy.may_read_phi(actor)},
            at=now,
        ),
    )
    if conversation is None:
        # Before the first message: an empty thread, with every field the answer documents.
        empty = {"status": "open", "waiting_since": None, "first_reply_at": None, "unread": 0}
        return {
            "conversation_id": None, "lead_id": lead_id, "items": [], "next_cursor": None,
            "snoozed_until": None, **empty,
        }  # fmt: skip
    found = page_of(session=session, conversation=conversation, actor=actor, cursor=cursor, limit=limit)
    return {**found, "snoozed_until": conversation.snoozed_at(now)}


def page_of(
    *, session: UnitOfWork, conversation: Conversation, actor: Actor, cursor: str | None, limit: int
) -> dict:
    before = decode_cursor(cursor, ("before",))
    # Only the delivery columns of the notification: its texts are encrypted and not needed here.
    delivery = Load(Notification).load_only(
        Notification.status,
        Notification.last_error,
        Notification.delivered_at,
        Notification.opened_at,
        Notification.next_attempt_at,
        Notification.held_until,
        Notification.held_by,
    )
    query = (
        sa.select(ConversationMessage, Notification)
        .outerjoin(Notification, Notification.id == ConversationMessage.notification_id)
        .options(delivery)
        .where(ConversationMessage.conversation_id == conversation.id)
        .order_by(ConversationMessage.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(ConversationMessage.id < int(before["before"]))
    rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    attached = media.of_messages(session, [message.id for message, _ in rows])
    return {
        "conversation_id": conversation.id,
        "lead_id": conversation.lead_id,
        "status": conversation.status,
        "waiting_since": conversation.waiting_since,
        "first_reply_at": conversation.first_reply_at,
        "unread": unread_count(session=session, conversation=conversation, user_id=actor.user_id),
        "items": [
            message_answer(message, notification, attached.get(message.id, []), conversation.lead_id)
            for message, notification in rows
        ],
        "next_cursor": encode_cursor({"before": rows[-1][0].id}) if more else None,
    }


def message_answer(
    message: ConversationMessage, notification: Notification | None, attached: list, lead_id: int | None
) -> dict:
    status, reason = delivery_status(message, notification)
    return {
        "id": message.id,
        "channel": message.channel,
        "direction": message.direction,
        "sender_user_id": message.sender_user_id,
        "sender": message.sender_ref,
        "automated": message.direction != INBOUND and message.sender_user_id is None,
        "origin": message.origin,
        "subject": message.subject,
        "body": message.body,
        "full_body": message.full_body,
        "auto_reply": message.auto_reply,
        "status": status,
        "failure_reason": reason,
        **held(notification),
        "notification_id": message.notification_id,
        "occurred_at": message.occurred_at,
        "media": media.entries(message, attached, lead_id),
    }


def read_mark(session: UnitOfWork, conversation_id: int, user_id: int | None) -> int:
    if user_id is None:  # an API key reads for nobody: everything is unread to it
        return 0
    mark = session.scalar(
        sa.select(ConversationRead.last_read_message_id).where(
            ConversationRead.conversation_id == conversation_id, ConversationRead.user_id == user_id
        )
    )
    return mark or 0


def unread_count(*, session: UnitOfWork, conversation: Conversation, user_id: int | None) -> int:
    """The family's messages after the caller's read mark."""
    return session.scalar(
        sa.select(sa.func.count()).where(
            ConversationMessage.conversation_id == conversation.id,
            ConversationMessage.direction == INBOUND,
            ConversationMessage.id > read_mark(session, conversation.id, user_id),
        )
    )


def mark_read(*, session: UnitOfWork, actor: Actor, lead_id: int, up_to: int | None, now: datetime) -> dict:
    """The caller has read the lead's thread up to message `up_to` (default: its last message). A
    mark never goes back: an older message id leaves it where it was."""
    if actor.user_id is None:
        raise ValidationFailed("user", "a read mark is a staff member's: an API key has none")
    conversation = lead_conversation(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    if conversation is None or conversation.last_message_id is None:
        raise ValidationFailed("message_id", "the lead's conversation has no message yet")
    up_to = conversation.last_message_id if up_to is None else up_to
    belongs = session.scalar(
        sa.select(ConversationMessage.id).where(
            ConversationMessage.id == up_to, ConversationMessage.conversation_id == conversation.id
        )
    )
    if belongs is None:
        raise ValidationFailed("message_id", "no message of this conversation has that id")
    mark = session.get(ConversationRead, (conversation.id, actor.user_id), with_for_update=True)
    if mark is None:
        mark = ConversationRead(
            conversation_id=conversation.id, user_id=actor.user_id, last_read_message_id=0
        )
        session.add(mark)
    mark.last_read_message_id = max(mark.last_read_message_id, up_to)
    mark.read_at = now
    session.flush()
    data = {"conversation_id": conversation.id, "last_read_message_id": mark.last_read_message_id}
    service.tell(
        session=session, conversation=conversation, user_id=actor.user_id, event=(READ_EVENT, data), now=now
    )
    unread = unread_count(session=session, conversation=conversation, user_id=actor.user_id)
    return {**data, "lead_id": lead_id, "unread": unread}


def open_media(*, session: UnitOfWork, actor: Actor, ref: tuple[int, int, int], settings, now: datetime):
    """The n-th image or video of an inbound message of the lead's thread (`ref`: lead id, message
    id, n), fetched from its provider's own host (media.fetch); 404 for another clinic's lead or a
    message or number the thread has not. The read is audited (ids only)."""
    lead_id, message_id, n = ref
    # Another clinic's lead is a 404 first, whoever asks; then a family's photo is PHI.
    conversation = lead_conversation(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    if not phi_policy.may_read_phi(actor):
        raise Forbidden("a family's photo or video is PHI: it needs lead:phi")
    if conversation is None:
        raise NotFound("the lead has no conversation yet")
    message, row = media.reference(
        session=session, conversation_id=conversation.id, message_id=message_id, n=n
    )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead.conversation.media.read",
            subject_type="lead",
            subject_id=lead_id,
            after={"message_id": message.id, "n": n},
            at=now,
        ),
    )
    return media.fetch(row=row, channel=message.channel, settings=settings)
