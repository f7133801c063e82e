"""The audit trail: who did what to which record, with before and after."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime
from app.platform.db.protected import EncryptedJSON


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_subject", "clinic_id", "subject_type", "subject_id", "at"),
        sa.Index("ix_audit_events_actor", "clinic_id", "actor", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    actor: Mapped[str] = mapped_column(sa.String(64))  # "user:3", "api_key:2", "system"
    action: Mapped[str] = mapped_column(sa.String(64))  # "lead.read", "user.update", ...
    subject_type: Mapped[str] = mapped_column(sa.String(32))
    subject_id: Mapped[str | None] = mapped_column(sa.String(64))
    # A change's values (a lead's notes, a DOB...): encrypted, nothing queries inside them.
    before: Mapped[dict | None] = mapped_column(EncryptedJSON)
    after: Mapped[dict | None] = mapped_column(EncryptedJSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
