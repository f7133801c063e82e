"""An unknown sender captured as a new lead from its conversation: the lead is made by the capture
every lead goes through (its owner, first stage, duplicates listed, the new-lead automation), with
the sender's number or address, then the sender's messages join its thread."""

from __future__ import annotations

from datetime import datetime

from app.domains.conversations import linking
from app.domains.intake import service as intake
from app.platform.db import UnitOfWork
from app.platform.roles import Actor


def capture(
    *, session: UnitOfWork, actor: Actor, conversation_id: int, data: dict, now: datetime
) -> intake.Intake:
    """A lead of `data` (names, source, ...) with the conversation's phone or email (the one typed
    in `data` wins), its thread the sender's messages."""
    conversation = linking.unknown_sender(
        session=session, clinic_id=actor.clinic_id, conversation_id=conversation_id
    )
    field = "phone" if conversation.contact_channel in ("sms", "whatsapp") else "email"
    body = {**data, field: data.get(field) or conversation.contact_address}
    made = intake.create_lead(
        session=session,
        actor=actor,
        new=intake.NewLead(data=body, channel=conversation.contact_channel or "api"),
        now=now,
    )
    linking.link(session=session, actor=actor, conversation_id=conversation_id, lead_id=made.lead.id, now=now)
    return made
