"""Privacy's own rows: the progress of a PHI key rotation (app/domains/privacy/rotation.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime


class RotationProgress(Base):
    """How far the rotation to one key has come in one table: a rerun continues after `after`."""

    __tablename__ = "phi_rotation_progress"

    table_name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    key_fingerprint: Mapped[str] = mapped_column(sa.String(16))  # sha256 prefix of the target key
    after: Mapped[list | None] = mapped_column(JSONType)  # the last primary key rewritten; null: start
    done: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
