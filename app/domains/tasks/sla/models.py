"""A lead's SLA clocks: one row per lead and kind."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime


class SlaKind(StrEnum):
    SPEED_TO_LEAD = "speed_to_lead"  # capture -> a person's first outbound attempt
    FIRST_RESPONSE = "first_response"  # capture -> the first contact (a two-way exchange)


class SlaState(StrEnum):
    PENDING = "pending"
    WARNING = "warning"
    BREACHED = "breached"
    MET = "met"
    CANCELLED = "cancelled"


RUNNING = (SlaState.PENDING, SlaState.WARNING)


class SlaClock(Base):
    __tablename__ = "sla_clocks"
    __table_args__ = (
        sa.UniqueConstraint("lead_id", "kind"),
        sa.Index("ix_sla_clocks_clinic_kind_status", "clinic_id", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime] = mapped_column(
        UTCDateTime
    )  # the warning share of the target, in business time
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the target, in business time
    target_minutes: Mapped[int] = mapped_column(sa.Integer)  # business minutes
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # met or cancelled
    settled_reason: Mapped[str | None] = mapped_column(sa.String(64))  # attempt, contact, lost, ...
