"""A reply by hand from a lead's conversation: a one-off message (app/domains/lead_messages/send.py:
the contact policy, the transactional lane, once per Idempotency-Key) on the channel given, or the
one the family last wrote on."""

from __future__ import annotations

from datetime import datetime

from app.domains.conversations import outbound_media, threads
from app.domains.lead_messages import send
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.roles import Actor


def reply(
    *, session: UnitOfWork, actor: Actor, lead_id: int, data: dict, now: datetime, idempotency_key: str | None
) -> dict:
    channel = data.get("channel")
    if channel is None:
        conversation = threads.lead_conversation(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
        channel = conversation.last_inbound_channel if conversation is not None else None
        if channel is None:
            raise ValidationFailed("channel", "required: the family has not written yet")
    if channel == "email" and not data.get("subject"):
        raise ValidationFailed("subject", "an email needs a subject")
    if channel != "email" and data.get("subject"):
        raise ValidationFailed("subject", "an SMS has no subject")
    template = channel == "whatsapp" and data.get("content_sid")
    if not data.get("body") and not data.get("media_url") and not template:
        why = "required (or an image or video by media_url; on WhatsApp, an approved template's content_sid)"
        raise ValidationFailed("body", why)
    if channel != "whatsapp" and ("content_sid" in data or "content_variables" in data):
        raise ValidationFailed("content_sid", "a WhatsApp template: only with channel whatsapp")
    # Before anything is queued: the provider would refuse a type or size its channel does not take.
    sent_media = outbound_media.check(channel=channel, data=data, settings=session.database.settings)
    answer = send.send_message(
        session=session,
        actor=actor,
        lead_id=lead_id,
        data={**data, "channel": channel, "body": data.get("body") or "", "media": sent_media},
        now=now,
        idempotency_key=idempotency_key,
    )
    return answer
