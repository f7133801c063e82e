"""The `stream_events` table: what each user's live stream carried, kept for a replay window."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime
from app.platform.db.protected import EncryptedJSON


class StreamEvent(Base):
    """One event of one user's stream. Its id is the SSE `id` a client resumes from (Last-Event-ID),
    so the record outlives any stream process and any host: Redis only says "look, there is more"."""

    __tablename__ = "stream_events"
    __table_args__ = (
        sa.Index("ix_stream_events_user_id_id", "user_id", "id"),  # a replay: one user's, after an id
        sa.Index("ix_stream_events_created_at", "created_at"),  # the prune, past the window
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    type: Mapped[str] = mapped_column(sa.String(64))  # "lead.assigned", "task.assigned", ...
    lead_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)  # the lead's erasure reaches it
    # An in-app notification's copy: erased with the notification (its title may name a lead).
    notification_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    # A lead's summary may carry its PHI fields (shaped per reader when sent): encrypted.
    data: Mapped[dict] = mapped_column(EncryptedJSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
