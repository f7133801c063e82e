"""The persisted rotation position of round-robin assignment."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime


class AssignmentCursor(Base):
    """Who got the last automatic assignment in a scope ("clinic", "source:<id>").

    Kept in the database, not in a process, so every web and worker process continues the same
    rotation. A round-robin turn updates the row in a statement of its own; the capacity policy
    holds the row locked until its transaction ends (see app/domains/assignment/service.py).
    """

    __tablename__ = "assignment_cursors"

    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), primary_key=True)
    scope: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    last_user_id: Mapped[int | None] = mapped_column(sa.Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
