"""A lead's consultation: when it is, where, with whom, and what became of it."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime
from app.platform.db.protected import EncryptedString


class ConsultationStatus(StrEnum):
    SCHEDULED = "scheduled"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class BookedVia(StrEnum):
    """How a consultation was booked, for the reports (self-booked against staff-booked)."""

    STAFF = "staff"  # a person of the clinic, or an integration's API key, through the API
    WEBHOOK = "webhook"  # the practice-management or booking system's signed appointment event
    SELF = "self"  # the family, on the clinic's booking page (booking/by_family.py)


class Consultation(Base):
    __tablename__ = "consultations"
    __table_args__ = (
        # A booking system's appointment id is one consultation of the clinic (the webhook's idempotency).
        sa.UniqueConstraint("clinic_id", "external_id"),
        sa.Index("ix_consultations_clinic_starts_at", "clinic_id", "starts_at"),
        sa.Index("ix_consultations_lead_id", "lead_id"),
        sa.Index("ix_consultations_provider_starts_at", "provider_id", "starts_at"),
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
    # The provider or chair booked (app/domains/availability) and the type: None for a consultation
    # booked by name only, which blocks nobody's calendar.
    provider_id: Mapped[int | None] = mapped_column(sa.ForeignKey("availability_providers.id"))
    type_id: Mapped[int | None] = mapped_column(sa.ForeignKey("availability_consultation_types.id"))
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The end plus the buffer after it: the provider is taken over [starts_at, blocked_until), which
    # the database keeps from overlapping for scheduled consultations (migration 0051).
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A practice-management booking stored over another (the clinic lets it win): the clash is kept
    # in availability_clashes and this row is outside the no-overlap rule.
    overlap_allowed: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false(), default=False)
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
    # How it was booked (BookedVia); never changes after, whoever moves or cancels it.
    booked_via: Mapped[str] = mapped_column(
        sa.String(16), default=BookedVia.STAFF.value, server_default=BookedVia.STAFF.value
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TimerKind(StrEnum):
    RECALL = "recall"  # a date a person set: call and text the family then (an observation visit's recall)
    RECORDS_EXPIRY = "records_expiry"  # the reminder before an attended consultation's records expire
    BENEFITS_RESET = "benefits_reset"  # the clinic's benefits reset date reached a cost-hesitant lead


class TimerStatus(StrEnum):
    SCHEDULED = "scheduled"
    DONE = "done"
    CANCELLED = "cancelled"


class LeadTimer(Base):
    """A lead's long timer (months or years ahead): its local date, the UTC moment that date's opening
    was when it was set, and what became of it. A scheduled one has its ledger job
    (`consultations.timer`, subject `lead_timer`); the row is what the lead's lists show."""

    __tablename__ = "lead_timers"
    __table_args__ = (
        sa.Index("ix_lead_timers_lead_id", "lead_id"),
        sa.Index("ix_lead_timers_clinic_status", "clinic_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    consultation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("consultations.id"))
    kind: Mapped[str] = mapped_column(sa.String(24))
    status: Mapped[str] = mapped_column(sa.String(16))
    # The clinic's local date it fires on, and its opening that day in UTC (fixed when set: DST-safe).
    fires_on: Mapped[date] = mapped_column(sa.Date)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_on: Mapped[date | None] = mapped_column(sa.Date)  # records_expiry: the records' last day
    # PHI: a person's words about the patient ("recheck the crowding").
    note: Mapped[str | None] = mapped_column(EncryptedString)
    reason: Mapped[str | None] = mapped_column(sa.String(200))  # why it was cancelled
    # One per recall, per consultation's records, per lead and benefits year.
    dedupe_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
