"""Pipeline stages and the stage history of each lead."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime

# The stage a booked consultation moves its lead to (app/domains/consultations/service.py).
BOOKED_STAGE = "consultation_scheduled"


class PipelineStage(Base):
    __tablename__ = "pipeline_stages"
    __table_args__ = (
        sa.UniqueConstraint("clinic_id", "slug"),
        sa.Index("ix_pipeline_stages_clinic_position", "clinic_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    name: Mapped[str] = mapped_column(sa.String(100))
    slug: Mapped[str] = mapped_column(sa.String(64))  # leads refer to their stage by slug; never changes
    description: Mapped[str | None] = mapped_column(sa.Text)
    position: Mapped[int] = mapped_column(sa.Integer)  # the API's `order`: 1 = first column of the board
    color: Mapped[str | None] = mapped_column(sa.String(7))  # "#RRGGBB"
    # The task template created when a lead enters the stage. The task-templates table comes
    # with the tasks domain, so this is a plain id for now (no foreign key).
    task_template_id: Mapped[int | None] = mapped_column(sa.Integer)
    max_days_in_stage: Mapped[int | None] = mapped_column(sa.Integer)
    is_terminal: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LeadStageHistory(Base):
    """One stay of a lead in a stage: when it entered, when it left (null while it is there)."""

    __tablename__ = "lead_stage_history"
    __table_args__ = (
        sa.Index("ix_lead_stage_history_lead_entered", "lead_id", "entered_at", "id"),
        # Analytics: the completed stays of a cohort (leads created in a range), from the index alone.
        # Analytics: the completed stays of each stage in length order (the median and p90 need no
        # sort), narrowed to a cohort (leads created in a range), from the index alone.
        sa.Index(
            "ix_lead_stage_history_stay_lengths",
            "clinic_id",
            "to_stage",
            "stay_seconds",
            postgresql_include=["lead_created_at", "lead_id"],
            postgresql_where=sa.text("stay_seconds IS NOT NULL"),
            sqlite_where=sa.text("stay_seconds IS NOT NULL"),
        ),
        # Analytics: the completed stays of a short range's cohort (a month's leads) found by capture
        # time instead of filtered out of the whole clinic's stays (the few thousand then sorted).
        sa.Index(
            "ix_lead_stage_history_cohort_stays",
            "clinic_id",
            "lead_created_at",
            postgresql_include=["to_stage", "stay_seconds", "lead_id"],
            postgresql_where=sa.text("stay_seconds IS NOT NULL"),
            sqlite_where=sa.text("stay_seconds IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    from_stage: Mapped[str | None] = mapped_column(sa.String(64))  # null for the first stay
    to_stage: Mapped[str] = mapped_column(sa.String(64))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(sa.String(64))  # actor ref
    # For analytics' stage-time reports: the lead's capture time; the stay's length once left.
    lead_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stay_seconds: Mapped[float | None] = mapped_column(sa.Float)
