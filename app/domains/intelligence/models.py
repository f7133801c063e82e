"""What intelligence keeps between nights: fitted score models and answered-call tallies.

The lead's own score, its factors and its next best action live on the lead (app/domains/leads/models.py),
so the lead list sorts by score without a join; an inbound reply's sentiment lives on its activity.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime


class ScoreModelRecord(Base):
    """One fitted lead-score model: a clinic's own, or the global prior (clinic_id null)."""

    __tablename__ = "score_models"
    __table_args__ = (sa.Index("ix_score_models_clinic_trained", "clinic_id", "trained_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clinics.id"))
    version: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # {"features": [...], "coefficients": [...], "intercept": x, "means": [...]}: plain numbers.
    parameters: Mapped[dict] = mapped_column(JSONType)
    samples: Mapped[int] = mapped_column(sa.Integer)
    conversions: Mapped[int] = mapped_column(sa.Integer)
    training_seconds: Mapped[float] = mapped_column(sa.Float)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactTally(Base):
    """Outbound calls and answered calls per local hour of week, of a clinic or one of its sources."""

    __tablename__ = "contact_tallies"
    __table_args__ = (sa.UniqueConstraint("clinic_id", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    # "clinic", or "source:<id>" (a string, not a nullable id: NULLs would not be unique).
    scope: Mapped[str] = mapped_column(sa.String(32))
    calls: Mapped[list] = mapped_column(JSONType)  # 168 counts, Monday 00:00 local first
    answered: Mapped[list] = mapped_column(JSONType)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
