"""Message templates (a clinic's reusable email and SMS texts with merge fields) and their uses."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime

EMAIL, SMS, INSTAGRAM, WHATSAPP = "email", "sms", "instagram", "whatsapp"
CHANNELS = (EMAIL, SMS)  # a template's
# A one-off message's (Instagram and WhatsApp have no message templates: WhatsApp's approved
# templates are Twilio's, named by content_sid).
MESSAGE_CHANNELS = (EMAIL, SMS, INSTAGRAM, WHATSAPP)


class MessageTemplate(Base):
    __tablename__ = "message_templates"
    __table_args__ = (
        # A live name is unique in the clinic; a deleted template's name may be used again.
        sa.Index(
            "uq_message_templates_clinic_name",
            "clinic_id",
            "name",
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    channel: Mapped[str] = mapped_column(sa.String(8))  # email or sms
    subject: Mapped[str | None] = mapped_column(sa.String(300))  # email only
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Soft delete: rules and sequences naming it skip their message (the reason on the why-trail),
    # and its usage and reply counts stay readable in the uses below.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageTemplateUse(Base):
    """One message made from a template and queued for a lead (by a rule, a sequence or a person).

    What the template's usage count counts; its reply count is those followed by a reply
    (app/domains/lead_messages/stats.py)."""

    __tablename__ = "message_template_uses"
    __table_args__ = (sa.Index("ix_message_template_uses_template", "template_id", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    template_id: Mapped[int] = mapped_column(sa.ForeignKey("message_templates.id"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    notification_id: Mapped[int] = mapped_column(sa.ForeignKey("notifications.id"), unique=True)
    channel: Mapped[str] = mapped_column(sa.String(8))
    sent_by: Mapped[str] = mapped_column(sa.String(64))  # "user:3", "api_key:2", "system"
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it was logged on the timeline


class BookingLinkEvent(Base):
    """Booking-link conversion (the bookings report): a message to a lead carrying its booking link
    (`sent`, when queued), or a consultation booked through such a link (`booked`)."""

    __tablename__ = "booking_link_events"
    __table_args__ = (sa.Index("ix_booking_link_events_clinic_at", "clinic_id", "at"),)

    SENT, BOOKED = "sent", "booked"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
