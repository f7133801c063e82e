"""What a clinic can be booked for, by whom, and when: consultation types, providers or chairs with
weekly hours and dated exceptions, clinic closures, the booking settings, busy blocks read from a
provider's own calendar feed (times only), and clashes a practice-management system was let win."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime
from app.platform.db.protected import EncryptedString


class ProviderKind(StrEnum):
    PROVIDER = "provider"  # a doctor or hygienist
    CHAIR = "chair"  # a chair or room booked by itself


class VisitMode(StrEnum):
    IN_PERSON = "in_person"
    VIRTUAL = "virtual"


class FeedStatus(StrEnum):
    PENDING = "pending"  # given, not read yet
    OK = "ok"
    FAILING = "failing"  # the last read failed: the last good copy's blocks still count


class BookingSettings(Base):
    """A clinic's booking rules (a consultation type may override the first three)."""

    __tablename__ = "availability_settings"

    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), primary_key=True)
    buffer_minutes: Mapped[int] = mapped_column(sa.Integer, default=0)
    min_notice_minutes: Mapped[int] = mapped_column(sa.Integer, default=120)
    horizon_days: Mapped[int] = mapped_column(sa.Integer, default=60)
    slot_step_minutes: Mapped[int] = mapped_column(sa.Integer, default=15)
    # The practice-management system owns its schedule: its booking into a taken slot is stored and
    # recorded as a clash for staff, rather than refused with a 409.
    webhook_wins: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Provider(Base):
    """A provider or a chair: its weekly hours in the clinic's timezone (the business-hours shape,
    with dated `exceptions`: `[]` off that day, other periods that day), and its private calendar
    feed, whose busy times block it."""

    __tablename__ = "availability_providers"
    __table_args__ = (sa.UniqueConstraint("clinic_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    kind: Mapped[str] = mapped_column(sa.String(16))
    hours: Mapped[dict] = mapped_column(JSONType)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # A secret address (whoever holds it reads the provider's calendar): encrypted, never shown back.
    feed_url: Mapped[str | None] = mapped_column(EncryptedString)
    feed_status: Mapped[str | None] = mapped_column(sa.String(16))
    feed_error: Mapped[str | None] = mapped_column(sa.String(300))
    feed_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    feed_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsultationType(Base):
    """What a family can book: its length, who may take it, in person or virtual, and optionally
    its own buffer, notice and horizon (else the clinic's)."""

    __tablename__ = "availability_consultation_types"
    __table_args__ = (sa.UniqueConstraint("clinic_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    duration_minutes: Mapped[int] = mapped_column(sa.Integer)
    mode: Mapped[str] = mapped_column(sa.String(16))
    provider_ids: Mapped[list] = mapped_column(JSONType)
    buffer_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    min_notice_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    horizon_days: Mapped[int | None] = mapped_column(sa.Integer)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Closure(Base):
    """Days the clinic is closed (a holiday, a training day): no slot on them, whoever's hours."""

    __tablename__ = "availability_closures"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    starts_on: Mapped[date] = mapped_column(sa.Date)
    ends_on: Mapped[date] = mapped_column(sa.Date)  # inclusive
    reason: Mapped[str | None] = mapped_column(sa.String(200))  # the clinic's words
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BusyBlock(Base):
    """A time the provider's own calendar says they are busy: start and end only, never what."""

    __tablename__ = "availability_busy_blocks"
    __table_args__ = (sa.Index("ix_availability_busy_blocks_provider_starts", "provider_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("availability_providers.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BookingClash(Base):
    """A practice-management booking stored over a consultation it clashes with (the clinic lets
    that system win): for staff to sort out. Times and provider only."""

    __tablename__ = "availability_clashes"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    consultation_id: Mapped[int] = mapped_column(sa.ForeignKey("consultations.id"))
    clashes_with_id: Mapped[int] = mapped_column(sa.ForeignKey("consultations.id"))
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("availability_providers.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
