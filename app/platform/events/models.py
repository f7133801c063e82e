"""The `events` outbox table."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime
from app.platform.db.protected import EncryptedJSON


class DomainEvent(Base):
    """Something that happened, written in the transaction of the change; consumed later, once."""

    __tablename__ = "events"
    __table_args__ = (
        # The consumer reads unprocessed rows in id order: WHERE processed_at IS NULL ORDER BY id.
        sa.Index("ix_events_processed_at_id", "processed_at", "id"),
        sa.Index("ix_events_subject", "clinic_id", "subject_type", "subject_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    type: Mapped[str] = mapped_column(sa.String(64))  # its type's NAME: "lead.created", ...
    # Its type's VERSION when written (app/platform/events/types.py): 1 for the rows before the types.
    version: Mapped[int] = mapped_column(sa.SmallInteger, default=1, server_default="1")
    subject_type: Mapped[str] = mapped_column(sa.String(32))
    subject_id: Mapped[int] = mapped_column(sa.Integer)
    payload: Mapped[dict] = mapped_column(EncryptedJSON)  # may copy a lead's fields: encrypted
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
