"""A lead's consultation: when it is, where, with whom, and what became of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime


class ConsultationStatus(StrEnum):
    SCHEDULED = "scheduled"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class Consultation(Base):
    __tablename__ = "consultations"
    __table_args__ = (
        # A booking system's appointment id is one consultation of the clinic (the webhook's idempotency).
        sa.UniqueConstraint("clinic_id", "external_id"),
        sa.Index("ix_consultations_clinic_starts_at", "clinic_id", "starts_at"),
        sa.Index("ix_consultations_lead_id", "lead_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    status: Mapped[str] = mapped_column(sa.String(16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int] = mapped_column(sa.Integer)
    # Where and with whom: the clinic's own words (an office, a doctor), not the family's.
    location: Mapped[str | None] = mapped_column(sa.String(200))
    provider_name: Mapped[str | None] = mapped_column(sa.String(120))
    external_id: Mapped[str | None] = mapped_column(sa.String(120))
    # Bumped by each reschedule: the reminders and the no-show check of an older time never act.
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reschedule_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    no_show_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The booking system's time of the newest appointment event applied: an older one arriving late
    # changes nothing (events out of order).
    source_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
