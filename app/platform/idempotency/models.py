"""Stored idempotency keys: one per clinic, actor and key, with the first answer."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime
from app.platform.db.protected import EncryptedString


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    # The constraint is what stops two concurrent duplicates from both writing.
    __table_args__ = (
        sa.UniqueConstraint("clinic_id", "actor", "key"),
        sa.Index("ix_idempotency_keys_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    actor: Mapped[str] = mapped_column(sa.String(64))  # "user:3", "api_key:2"
    key: Mapped[str] = mapped_column(sa.String(200))
    method: Mapped[str] = mapped_column(sa.String(8))
    path: Mapped[str] = mapped_column(sa.String(500))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    # Null while the first request is still running.
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    # A replayed answer may carry a lead's notes, DOB, insurance id: encrypted like their columns.
    response_body: Mapped[str | None] = mapped_column(EncryptedString)
    response_content_type: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
