"""The clashes a practice-management system was let win: listed for staff, marked resolved."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.availability.models import BookingClash
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound


def of_clinic(*, session: UnitOfWork, clinic_id: int, open_only: bool) -> list[BookingClash]:
    stmt = sa.select(BookingClash).where(BookingClash.clinic_id == clinic_id)
    if open_only:
        stmt = stmt.where(BookingClash.resolved_at.is_(None))
    return list(session.scalars(stmt.order_by(BookingClash.id.desc()).limit(500)))


def resolve(*, session: UnitOfWork, clinic_id: int, clash_id: int, now: datetime) -> BookingClash:
    clash = session.scalar(
        sa.select(BookingClash).where(BookingClash.id == clash_id, BookingClash.clinic_id == clinic_id)
    )
    if clash is None:
        raise NotFound(f"clash {clash_id} not found")
    clash.resolved_at = clash.resolved_at or now
    return clash
