"""A sequence: a clinic's cadence of steps. Its enrollments, and the steps it makes, are
automation's (app/domains/automation/models.py), which runs them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime


class Sequence(Base):
    """A cadence: steps, each a delay and then an email, an SMS or a call task."""

    __tablename__ = "sequences"
    __table_args__ = (sa.UniqueConstraint("clinic_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    steps: Mapped[list] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # A lead is in one active sequence at a time unless every sequence it is in allows more.
    allow_concurrent: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # Who may be enrolled, and what ends an enrollment early: condition lists as rules' (None: none).
    entry_conditions: Mapped[list | None] = mapped_column(JSONType)
    exit_conditions: Mapped[list | None] = mapped_column(JSONType)
    # Paced by the clinic's follow-up pass (docs/features/follow-up-pass.md): each next message goes
    # at a send window to a lead who qualifies, not after its own delay alone.
    paced_by_pass: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FollowUpPass(Base):
    """One run of a clinic's follow-up pass at a send window: what it selected, sent and skipped."""

    __tablename__ = "follow_up_passes"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    # followup-pass:<clinic>:<local date>:<window>: one pass per clinic and window, however many runs.
    dedupe_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    local_date: Mapped[str] = mapped_column(sa.String(10))
    window: Mapped[str] = mapped_column(sa.String(5))  # "09:00", the clinic's local time
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime)
    selected: Mapped[int] = mapped_column(sa.Integer)
    sent: Mapped[int] = mapped_column(sa.Integer)
    skipped: Mapped[list] = mapped_column(JSONType, default=list)  # [{"lead_id", "reason"}]


class FollowUpSend(Base):
    """A follow-up the pass sent a lead: at most one per pass and lead (the pass's own dedupe)."""

    __tablename__ = "follow_up_sends"
    __table_args__ = (
        sa.UniqueConstraint("pass_id", "lead_id"),
        sa.Index("ix_follow_up_sends_lead", "lead_id", "sent_at"),
        sa.Index("ix_follow_up_sends_clinic", "clinic_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pass_id: Mapped[int] = mapped_column(sa.ForeignKey("follow_up_passes.id"))
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    sequence_id: Mapped[int] = mapped_column(sa.ForeignKey("sequences.id"))
    step_index: Mapped[int] = mapped_column(sa.Integer)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
