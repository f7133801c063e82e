"""An unknown sender's thread, linked by staff to the lead it belongs to.

Its messages join the lead's thread (made now if the lead had none), in the order they were
recorded; the unknown sender's thread, and its read marks, are gone after.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.conversations import service
from app.domains.conversations.models import INBOUND, Conversation, ConversationMessage, ConversationRead
from app.domains.leads import service as leads
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound
from app.platform.roles import Actor


def unknown_sender(*, session: UnitOfWork, clinic_id: int, conversation_id: int) -> Conversation:
    """An unknown sender's conversation of the clinic, locked; 404 for another clinic's (or none),
    409 once it is a lead's."""
    source = session.scalar(
        sa.select(Conversation)
        .where(Conversation.id == conversation_id, Conversation.clinic_id == clinic_id)
        .with_for_update()
    )
    if source is None:
        raise NotFound("conversation not found")
    if source.lead_id is not None:
        raise Conflict("this conversation is already a lead's", code="already_linked")
    return source


def link(*, session: UnitOfWork, actor: Actor, conversation_id: int, lead_id: int, now: datetime) -> dict:
    source = unknown_sender(session=session, clinic_id=actor.clinic_id, conversation_id=conversation_id)
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    target = service.conversation_of(session=session, lead=lead, now=now)
    session.execute(
        sa.update(ConversationMessage)
        .where(ConversationMessage.conversation_id == source.id)
        .values(conversation_id=target.id)
    )
    session.execute(sa.delete(ConversationRead).where(ConversationRead.conversation_id == source.id))
    session.delete(source)
    session.flush()
    _recount(session, target, now)
    return {"conversation_id": target.id, "lead_id": lead.id}


def _recount(session: UnitOfWork, conversation: Conversation, now: datetime) -> None:
    """The thread's last message, the family's last one and the wait, from its messages."""
    newest = session.scalar(
        sa.select(ConversationMessage)
        .where(ConversationMessage.conversation_id == conversation.id)
        .order_by(ConversationMessage.id.desc())
        .limit(1)
    )
    family = session.scalar(
        sa.select(ConversationMessage)
        .where(
            ConversationMessage.conversation_id == conversation.id, ConversationMessage.direction == INBOUND
        )
        .order_by(ConversationMessage.id.desc())
        .limit(1)
    )
    if newest is not None:
        conversation.last_message_id, conversation.last_message_at = newest.id, newest.occurred_at
    if family is not None:
        conversation.last_inbound_id, conversation.last_inbound_channel = family.id, family.channel
        conversation.first_inbound_at = conversation.first_inbound_at or family.occurred_at
        if newest.direction == INBOUND:
            conversation.waiting_since = conversation.waiting_since or family.occurred_at
    conversation.updated_at = now
