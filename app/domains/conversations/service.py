"""Writing the thread: every message to or from a family lands in its lead's conversation, in the
transaction that records it (an inbound reply's, a queued message's), so it is never lost and never
doubled (an inbound message is stored once per provider id: its twin loses on the unique key).

The conversation keeps what the inbox sorts and filters by: when the last message came, the
family's newest message (what each staff member's read mark is compared with), since when the family
has waited for an answer (a person's reply ends the wait; an automated message does not), and when
the first reply came. Each new message goes out on the owner's live stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.conversations import media as message_media
from app.domains.conversations.models import (
    INBOUND,
    OPEN,
    OUTBOUND,
    Conversation,
    ConversationMedia,
    ConversationMessage,
)
from app.domains.leads.models import Lead
from app.platform import phi
from app.platform.db import UnitOfWork, new_row
from app.platform.db.protected import keys_of
from app.platform.stream import feed

FAMILY = "inbound_webhook"  # the sender of an inbound message: the family itself
CONTACT_PURPOSE = "conversation_contact"  # the blind index of an unknown sender's address
MESSAGE_EVENT = "conversation.message"


@dataclass(frozen=True)
class Inbound:
    """A message from the family as a provider delivered it."""

    channel: str
    provider_message_id: str
    body: str
    occurred_at: datetime
    full_body: str | None = None  # an email as received, its quoted history included
    subject: str | None = None
    auto_reply: bool = False  # an out-of-office: shown, but nobody waits on it
    media: tuple = ()  # its images and videos, as media.MediaRef references


@dataclass(frozen=True)
class Outbound:
    """A message to the family, queued on the notifications ledger as `notification_id`."""

    channel: str
    body: str
    notification_id: int
    sender_ref: str
    sender_user_id: int | None = None
    subject: str | None = None
    origin: dict | None = field(default=None)  # the automation's rule, sequence and step ids
    media: tuple = ()  # the image or video sent with it, as a media.MediaRef


def conversation_of(*, session: UnitOfWork, lead: Lead, now: datetime) -> Conversation:
    """The lead's conversation, locked for this transaction; made on its first message."""
    found = _locked(
        session, sa.and_(Conversation.clinic_id == lead.clinic_id, Conversation.lead_id == lead.id)
    )
    if found is not None:
        return found
    return _create(session, {"clinic_id": lead.clinic_id, "lead_id": lead.id}, now) or _locked(
        session, sa.and_(Conversation.clinic_id == lead.clinic_id, Conversation.lead_id == lead.id)
    )


def contact_index(*, session: UnitOfWork, clinic_id: int, address: str) -> str:
    return phi.blind_index(
        keys=keys_of(session), purpose=CONTACT_PURPOSE, scope=str(clinic_id), value=address
    )


def unknown_sender_conversation(
    *, session: UnitOfWork, clinic_id: int, channel: str, address: str, now: datetime
) -> Conversation:
    """The conversation of a sender that matches no lead (`address`: the normalised phone or
    email), one per address of the clinic, made on its first message."""
    index = contact_index(session=session, clinic_id=clinic_id, address=address)
    where = sa.and_(Conversation.clinic_id == clinic_id, Conversation.contact_index == index)
    found = _locked(session, where)
    if found is not None:
        return found
    values = {
        "clinic_id": clinic_id,
        "contact_channel": channel,
        "contact_address": address,
        "contact_index": index,
    }
    return _create(session, values, now) or _locked(session, where)


def _locked(session: UnitOfWork, where) -> Conversation | None:
    # Locked: two messages of one thread at once update its last message one after the other.
    return session.scalar(sa.select(Conversation).where(where).with_for_update())


def _create(session: UnitOfWork, values: dict, now: datetime) -> Conversation | None:
    """A new conversation, or None when a concurrent transaction made it first (then read it)."""
    try:
        with session.begin_nested():
            row = new_row(Conversation, status=OPEN, created_at=now, updated_at=now, **values)
            session.add(row)
            session.flush()
            return row
    except IntegrityError:
        return None


def find_inbound(
    *, session: UnitOfWork, clinic_id: int, channel: str, provider_message_id: str
) -> ConversationMessage | None:
    return session.scalar(
        sa.select(ConversationMessage).where(
            ConversationMessage.clinic_id == clinic_id,
            ConversationMessage.channel == channel,
            ConversationMessage.direction == INBOUND,
            ConversationMessage.provider_message_id == provider_message_id,
        )
    )


def record_inbound(
    *, session: UnitOfWork, conversation: Conversation, message: Inbound, now: datetime
) -> ConversationMessage:
    """Add the family's message to `conversation` (the caller holds it once per provider id)."""
    row = new_row(
        ConversationMessage,
        clinic_id=conversation.clinic_id,
        conversation_id=conversation.id,
        channel=message.channel,
        direction=INBOUND,
        sender_user_id=None,
        sender_ref=FAMILY,
        origin=None,
        subject=message.subject,
        body=message.body,
        full_body=message.full_body,
        provider_message_id=message.provider_message_id,
        notification_id=None,
        auto_reply=message.auto_reply,
        occurred_at=message.occurred_at,
        created_at=now,
    )
    session.add(row)
    session.flush()
    message_media.record(session=session, message=row, refs=message.media, now=now)
    conversation.last_inbound_id = row.id
    conversation.last_inbound_channel = message.channel
    if not message.auto_reply:
        # The family wrote: the thread is open again (no longer snoozed either) and waits from
        # their oldest unanswered word.
        conversation.status, conversation.snoozed_until = OPEN, None
        conversation.waiting_since = conversation.waiting_since or message.occurred_at
        conversation.first_inbound_at = conversation.first_inbound_at or message.occurred_at
    _advance(session, conversation, row, now)
    return row


def record_inbound_once(
    *, session: UnitOfWork, conversation: Conversation, message: Inbound, now: datetime
) -> ConversationMessage:
    """`record_inbound`, unless this provider id is already in the clinic's threads (a redelivery)."""
    keys = {"clinic_id": conversation.clinic_id, "channel": message.channel}
    seen = find_inbound(session=session, provider_message_id=message.provider_message_id, **keys)
    if seen is not None:
        return seen
    try:
        with session.begin_nested():
            return record_inbound(session=session, conversation=conversation, message=message, now=now)
    except IntegrityError:  # its twin, in another process, stored it first
        return find_inbound(session=session, provider_message_id=message.provider_message_id, **keys)


def record_outbound(
    *, session: UnitOfWork, lead: Lead, message: Outbound, now: datetime
) -> ConversationMessage:
    """Add a message queued for the family to the lead's conversation. A person's message answers
    the family (the wait ends; the first one is the first reply), an automated one does not."""
    seen = session.scalar(
        sa.select(ConversationMessage).where(ConversationMessage.notification_id == message.notification_id)
    )
    if seen is not None:  # the ledger handed back the message its dedupe key already made
        return seen
    conversation = conversation_of(session=session, lead=lead, now=now)
    row = new_row(
        ConversationMessage,
        clinic_id=lead.clinic_id,
        conversation_id=conversation.id,
        channel=message.channel,
        direction=OUTBOUND,
        sender_user_id=message.sender_user_id,
        sender_ref=message.sender_ref,
        origin=message.origin,
        subject=message.subject,
        body=message.body,
        full_body=None,
        provider_message_id=None,
        notification_id=message.notification_id,
        auto_reply=False,
        occurred_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    message_media.record(session=session, message=row, refs=message.media, now=now)
    if message.sender_user_id is not None:
        conversation.waiting_since = None
        if conversation.first_inbound_at is not None and conversation.first_reply_at is None:
            conversation.first_reply_at = now
    _advance(session, conversation, row, now, lead=lead)
    return row


def _advance(
    session: UnitOfWork,
    conversation: Conversation,
    row: ConversationMessage,
    now: datetime,
    lead: Lead | None = None,
) -> None:
    conversation.last_message_id = row.id
    conversation.last_message_at = row.occurred_at
    conversation.updated_at = now
    lead = lead or (session.get(Lead, conversation.lead_id) if conversation.lead_id else None)
    if lead is not None and lead.assigned_to_id is not None:
        tell(
            session=session,
            conversation=conversation,
            user_id=lead.assigned_to_id,
            event=message_event(row),
            now=now,
        )


def message_event(row: ConversationMessage) -> tuple[str, dict]:
    """What a stream says of a new message: ids, channel and direction; never its text."""
    data = {
        "conversation_id": row.conversation_id,
        "message_id": row.id,
        "channel": row.channel,
        "direction": row.direction,
        "notification_id": row.notification_id,
    }
    return MESSAGE_EVENT, data


def tell(
    *, session: UnitOfWork, conversation: Conversation, user_id: int, event: tuple[str, dict], now: datetime
) -> None:
    kind, data = event
    note = feed.StreamNote(
        type=kind, data={"lead_id": conversation.lead_id, **data}, lead_id=conversation.lead_id
    )
    feed.record(session=session, clinic_id=conversation.clinic_id, user_id=user_id, note=note, now=now)


def erase_lead(*, session: UnitOfWork, lead_id: int) -> int:
    """A lead's erasure reaches its thread: every message's texts and media references go (kinds,
    directions, statuses and times stay, as the timeline's do), its read marks stay (ids). How many
    messages it erased."""
    thread = sa.select(Conversation.id).where(Conversation.lead_id == lead_id).scalar_subquery()
    # The family's photos and videos go too: their references are where the provider keeps them.
    messages = sa.select(ConversationMessage.id).where(ConversationMessage.conversation_id.in_(thread))
    session.execute(
        sa.delete(ConversationMedia)
        .where(ConversationMedia.message_id.in_(messages))
        .execution_options(synchronize_session=False)
    )
    erased = session.execute(
        sa.update(ConversationMessage)
        .where(ConversationMessage.conversation_id.in_(thread))
        .values(body="[erased]", subject=None, full_body=None)
        .execution_options(synchronize_session=False)
    )
    return erased.rowcount
