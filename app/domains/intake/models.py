"""What intake keeps of an import besides its bulk job: the clinic's last column mapping, offered
again when the next spreadsheet has the same headers."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime


class ImportMapping(Base):
    """A clinic's last mapping of spreadsheet headers to lead fields ({header: field or None})."""

    __tablename__ = "lead_import_mappings"

    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), primary_key=True)
    columns: Mapped[dict] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
