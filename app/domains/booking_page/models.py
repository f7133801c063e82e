"""A clinic's booking page: its public key (the page's address, not guessable, unlike the clinic's
id), the website origins allowed to embed it, and how close to the visit a family may still move or
cancel it through the confirmation's link; the form stamps already spent on a booking."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime

DEFAULT_CUTOFF_HOURS = 24


class BookingPageSettings(Base):
    __tablename__ = "booking_page_settings"

    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), primary_key=True)
    public_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # https://www.example-clinic.com and the like: CSP frame-ancestors; none listed, no framing at all.
    embed_origins: Mapped[list] = mapped_column(JSONType, default=list)
    change_cutoff_hours: Mapped[int] = mapped_column(
        sa.Integer, default=DEFAULT_CUTOFF_HOURS, server_default=str(DEFAULT_CUTOFF_HOURS)
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SpentFormStamp(Base):
    """A form stamp's one-off id once a booking or a move went through with it: the same form posted
    again (a replay, a script) is refused. Kept for the stamp's lifetime only (links.FORM_LIFETIME)."""

    __tablename__ = "booking_form_stamps"
    __table_args__ = (sa.Index("ix_booking_form_stamps_clinic_spent_at", "clinic_id", "spent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    spent_at: Mapped[datetime] = mapped_column(UTCDateTime)
