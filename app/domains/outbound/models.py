"""Notifications: one row per message to a person, whatever the channel (in-app, email, SMS, console)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime
from app.platform.db.protected import EncryptedJSON, EncryptedString


class Channel(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    SMS = "sms"
    INSTAGRAM = "instagram"  # a direct message from the clinic's Instagram account
    WHATSAPP = "whatsapp"  # through Twilio, from the clinic's WhatsApp sender
    CONSOLE = "console"


# An approved WhatsApp template (Twilio's Content API): its Content SID and its placeholders' values.
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
CONTENT_SID_FORM = "an approved template's Content SID: HX followed by 32 hex digits"
WHATSAPP_TEMPLATE = "whatsapp_template"  # in a notification's context: the template it goes as


@dataclass(frozen=True)
class WhatsAppTemplate:
    """A WhatsApp message outside the 24-hour window goes as one (app/domains/conversations/whatsapp.py)."""

    content_sid: str
    variables: dict

    @classmethod
    def named_in(cls, values: dict | None) -> WhatsAppTemplate | None:
        """The template a step's or rule's action or a request names (`content_sid`,
        `content_variables`), or None."""
        values = values or {}
        if not values.get("content_sid"):
            return None
        return cls(values["content_sid"], dict(values.get("content_variables") or {}))

    @classmethod
    def queued_in(cls, context: dict | None) -> WhatsAppTemplate | None:
        """The template a queued notification goes as (its context's WHATSAPP_TEMPLATE), or None."""
        found = (context or {}).get(WHATSAPP_TEMPLATE)
        return cls.named_in(found) if isinstance(found, dict) else None

    def as_context(self) -> dict:
        return {WHATSAPP_TEMPLATE: {"content_sid": self.content_sid, "content_variables": self.variables}}

    def variables_json(self) -> str:
        """ContentVariables as Twilio takes it: a JSON object."""
        return json.dumps(self.variables, separators=(",", ":"), ensure_ascii=False)


def waiting_hold(row) -> dict:
    """A message's hold as its answers give it (`held_until`, `held_by`; `row` has them, `status` and
    `next_attempt_at`): only while it waits for that hold's end (pending, due then); nulls once it
    went or waits for a retry instead, or when nothing held it."""
    held_until, held_by = row.held_until, row.held_by
    if row.status != DeliveryStatus.PENDING.value or held_until is None or row.next_attempt_at != held_until:
        return {"held_until": None, "held_by": None}
    return {"held_until": held_until.astimezone(UTC), "held_by": held_by}


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # permanent error: retrying would not help
    DEAD = "dead"  # transient errors until the retries ran out
    # The SMS request or the email's content left and no answer came: it may have reached the lead.
    # Never re-sent by itself nor by a bulk retry: reconciled by Twilio's status callback or SendGrid's
    # delivered event, else an admin decides, one by one (retry with confirm_may_duplicate).
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"  # a send-time guard said it may no longer go (consent, quiet hours)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_inbox", "recipient_user_id", "read_at", "created_at"),
        sa.Index("ix_notifications_delivery", "clinic_id", "status", "channel"),
        sa.Index("ix_notifications_status_sending_at", "status", "sending_at"),  # the stuck-send sweep
        sa.Index("ix_notifications_provider_message_id", "provider_message_id"),  # the SMS status webhook
        sa.Index("ix_notifications_clinic_to_address_index", "clinic_id", "to_address_index"),  # by recipient
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    recipient_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    lead_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)  # messages to a lead
    # A message to a lead copies its address, name and what it is about: these are encrypted.
    to_address: Mapped[str | None] = mapped_column("to_address_encrypted", EncryptedString, key="to_address")
    # Keyed HMAC of the normalised address within the clinic: finds a recipient's messages without
    # decrypting every row (app/domains/outbound/recipients.py).
    to_address_index: Mapped[str | None] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(16))
    kind: Mapped[str] = mapped_column(sa.String(32))  # reminder, escalation, new_task, new_lead, ...
    # A campaign's message (a sequence's, a digest's): delivered in the bulk lane, after every
    # transactional message waiting (app/platform/scheduling/turns.py), and so are its retries.
    bulk: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false(), nullable=False)
    template: Mapped[str | None] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column("title_encrypted", EncryptedString, key="title")
    body: Mapped[str] = mapped_column(EncryptedString, default="")  # the text part (email), the message (SMS)
    # Rendered once when the row is written: a retry sends exactly what the first attempt sent.
    body_html: Mapped[str | None] = mapped_column(EncryptedString)
    link: Mapped[str | None] = mapped_column(sa.String(500))
    context: Mapped[dict | None] = mapped_column(EncryptedJSON)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why a message to a lead waits: held until `held_until` by `held_by` (delivery rules' HOLD_REASONS);
    # cleared when it is sent. Its answers show it while it is still pending.
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    held_by: Mapped[str | None] = mapped_column(sa.String(16))
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(128))
    # The From it went (or may have gone) from: a reply to the platform's shared number belongs to
    # the clinic that last texted that phone from it (app/domains/intake/inbound/shared_sender.py).
    sender: Mapped[str | None] = mapped_column(sa.String(64))
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the current send began
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the provider's delivery receipt
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # an email's first reported open
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotificationPreference(Base):
    """A staff member's channels per kind and quiet hours; no row means the defaults (rules.py)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    channels: Mapped[dict] = mapped_column(JSONType, default=dict)  # kind -> ["email", "sms", ...]
    quiet_start: Mapped[str | None] = mapped_column(sa.String(5))  # HH:MM local (user's timezone)
    quiet_end: Mapped[str | None] = mapped_column(sa.String(5))
    sms_number: Mapped[str | None] = mapped_column(sa.String(20))  # E.164
    # An admin's analytics summary email: daily, weekly or off (None: rules.DEFAULT_SUMMARY_FREQUENCY).
    summary_frequency: Mapped[str | None] = mapped_column(sa.String(8))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProviderSendWindow(Base):
    """The current rate-limit window of a clinic's sends on one channel
    (app/domains/outbound/worker/rate_limits.py)."""

    __tablename__ = "provider_send_windows"

    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    sent: Mapped[int] = mapped_column(sa.Integer)
