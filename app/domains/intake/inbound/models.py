"""An inbound SMS or email matched to a lead, or an inbound call: stored once per provider id."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime
from app.platform.db.protected import EncryptedString


class InboundMessage(Base):
    """An inbound SMS or email from a provider webhook, matched to a lead: stored once per message id.

    The provider's message id makes the webhook idempotent: a retried delivery finds its row and
    answers as the first time did, recording nothing. Unmatched messages are not stored.
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (sa.UniqueConstraint("clinic_id", "channel", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    channel: Mapped[str] = mapped_column(sa.String(16))  # sms | email | instagram | call
    message_id: Mapped[str] = mapped_column(sa.String(200))  # the provider's id
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"), index=True)
    activity_id: Mapped[int] = mapped_column(sa.ForeignKey("lead_activities.id"))
    opted_out: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # the message was a STOP
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProviderDelivery(Base):
    """A provider's delivery, seen once: Twilio's MessageSid of an inbound SMS, SendGrid's sg_event_id.

    Written before anything the delivery asks for (a STOP, a START, an opt-out), in the same
    transaction: a replay, or its twin in another web process, loses on the unique key and acts on
    nothing. Ids only: no number, address or text. SendGrid's ids are forgotten once their events are
    too old to be accepted anyway (app/domains/intake/inbound/sendgrid.forget_past_events); Twilio's are
    kept for good: its signature carries no time, so only the memory refuses an old request."""

    __tablename__ = "provider_deliveries"
    __table_args__ = (sa.UniqueConstraint("provider", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(16))  # twilio_sms | sendgrid_event
    delivery_id: Mapped[str] = mapped_column(sa.String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class UnclaimedMessage(Base):
    """A message to the platform's shared sender from a phone no clinic texted from it lately: no
    clinic's, so it waits in the platform operator's queue (never dropped) until the operator hands
    it to a clinic, where it becomes that clinic's inbound message. Stored once per provider id; its
    sender and text are PHI, encrypted, and cleared once handed on."""

    __tablename__ = "unclaimed_messages"
    __table_args__ = (sa.UniqueConstraint("channel", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16))  # sms | whatsapp
    message_id: Mapped[str] = mapped_column(sa.String(128))  # the provider's id
    sender: Mapped[str | None] = mapped_column("sender_encrypted", EncryptedString, key="sender")
    body: Mapped[str | None] = mapped_column(EncryptedString)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    handed_to_clinic_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clinics.id"))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
