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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
