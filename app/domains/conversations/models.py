"""One conversation per lead across channels, its messages in both directions, and each staff
member's read mark.

A conversation with no lead is an unknown sender's (a text or email from a number or address that
matches no lead of the clinic): kept so nobody's message is dropped, until staff link it to a lead.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime
from app.platform.db.protected import EncryptedString

OPEN, RESOLVED = "open", "resolved"
SNOOZED = (
    "snoozed"  # not a stored status: an open conversation whose snooze has not ended (the inbox's filter)
)
INBOUND, OUTBOUND = "inbound", "outbound"


class Conversation(Base):
    """The thread with a family: one per lead (or one per unknown sender of a clinic). Its assignee
    is the lead's owner, read from the lead, so a reassignment moves the thread with it."""

    __tablename__ = "conversations"
    __table_args__ = (
        sa.UniqueConstraint("clinic_id", "lead_id", name="uq_conversations_clinic_id_lead_id"),
        # An unknown sender's thread: found by the blind index of its address, one per address.
        sa.UniqueConstraint("clinic_id", "contact_index", name="uq_conversations_clinic_id_contact_index"),
        # The inbox, newest activity first.
        sa.Index("ix_conversations_inbox", "clinic_id", "last_message_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int | None] = mapped_column(sa.ForeignKey("leads.id"))
    # An unknown sender's channel and address (encrypted) and its blind index; None once linked.
    contact_channel: Mapped[str | None] = mapped_column(sa.String(16))
    contact_address: Mapped[str | None] = mapped_column(
        "contact_address_encrypted", EncryptedString, key="contact_address"
    )
    contact_index: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default=OPEN, server_default=OPEN)
    # The family's oldest message not answered yet (None: nobody is waiting for an answer).
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_message_id: Mapped[int | None] = mapped_column(sa.Integer)
    # The family's newest message: what a staff member's read mark is compared with.
    last_inbound_id: Mapped[int | None] = mapped_column(sa.Integer)
    last_inbound_channel: Mapped[str | None] = mapped_column(sa.String(16))
    first_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Put away by staff until then (out of the inbox's Open view); the family's next message or a
    # reopen ends it early. A time passed is no snooze.
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def snoozed_at(self, now: datetime) -> datetime | None:
        """Until when the thread is snoozed as of `now` (None: it is not)."""
        return self.snoozed_until if self.snoozed_until is not None and self.snoozed_until > now else None


class ConversationMessage(Base):
    """One message to or from the family, on any channel, automated or by a person.

    An outbound message is the notification the ledger delivers (`notification_id`): its delivery
    status is that row's, as the provider's receipts update it, so the two never disagree. An inbound
    one is stored once per provider id."""

    __tablename__ = "conversation_messages"
    __table_args__ = (
        sa.UniqueConstraint(
            "clinic_id",
            "channel",
            "direction",
            "provider_message_id",
            name="uq_conversation_messages_provider_id",
        ),
        sa.Index("ix_conversation_messages_thread", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"))
    channel: Mapped[str] = mapped_column(sa.String(16))  # sms | email (whatsapp, instagram later)
    direction: Mapped[str] = mapped_column(sa.String(8))  # inbound | outbound
    sender_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # Who sent it: "user:<id>", the automation ("system"), or the family ("inbound_webhook").
    sender_ref: Mapped[str] = mapped_column(sa.String(64))
    # The automation that sent it: rule, sequence and step ids (no text).
    origin: Mapped[dict | None] = mapped_column(JSONType)
    subject: Mapped[str | None] = mapped_column("subject_encrypted", EncryptedString, key="subject")
    # As shown: an email reply without the quoted history below it.
    body: Mapped[str] = mapped_column("body_encrypted", EncryptedString, key="body")
    # The message as received (an email with its quoted history), kept for the record.
    full_body: Mapped[str | None] = mapped_column("full_body_encrypted", EncryptedString, key="full_body")
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(200))
    notification_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    auto_reply: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversationRead(Base):
    """How far one staff member has read one conversation."""

    __tablename__ = "conversation_reads"

    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("conversations.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    last_read_message_id: Mapped[int] = mapped_column(sa.Integer)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversationMedia(Base):
    """An image or video of a message, kept as a reference: where the provider keeps it (or, for an
    outbound one, the address the clinic sent), never its bytes. The address is encrypted like PHI:
    a provider's media URL fetches a family's photo for whoever holds it (Twilio's may be
    unauthenticated). Staff see it through the engine (GET .../media/{n}), never this URL."""

    __tablename__ = "conversation_media"
    __table_args__ = (
        sa.UniqueConstraint("message_id", "position", name="uq_conversation_media_message_id_position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("conversation_messages.id"))
    position: Mapped[int] = mapped_column(sa.Integer)  # n, from 0, as the provider numbered it
    kind: Mapped[str] = mapped_column(sa.String(8))  # image | video | file
    # The provider's MIME type (Twilio's MediaContentType{N}); None when it says only the kind (Instagram).
    content_type: Mapped[str | None] = mapped_column(sa.String(64))
    url: Mapped[str] = mapped_column("url_encrypted", EncryptedString, key="url")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
