"""What lists consultations: a lead's, a clinic's local day or days (the console's schedule), a
coordinator's calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.consultations.models import Consultation, ConsultationStatus
from app.domains.leads import service as leads
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork


def of_lead(*, session: UnitOfWork, clinic_id: int, lead_id: int) -> list[Consultation]:
    """A lead's consultations, newest start first."""
    leads.get_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
    return list(
        session.scalars(
            sa.select(Consultation)
            .where(Consultation.clinic_id == clinic_id, Consultation.lead_id == lead_id)
            .order_by(Consultation.starts_at.desc(), Consultation.id.desc())
        )
    )


def of_day(
    *, session: UnitOfWork, clinic_id: int, day: date, status: str | None = None
) -> list[Consultation]:
    """The clinic's consultations starting on `day` (its local calendar day), earliest first."""
    return of_days(session=session, clinic_id=clinic_id, days=LocalDays(day, day), status=status)


@dataclass(frozen=True)
class LocalDays:
    """The clinic's local calendar days [first, last], optionally of one provider or chair."""

    first: date
    last: date
    provider_id: int | None = None


def of_days(
    *, session: UnitOfWork, clinic_id: int, days: LocalDays, status: str | None = None
) -> list[Consultation]:
    """The clinic's consultations starting on the local days asked (each day from its local
    midnight, so a day of a clock change is 23 or 25 hours long), earliest first."""
    clinic = session.get(Clinic, clinic_id)
    zone = ZoneInfo(clinic.timezone)
    start = datetime.combine(days.first, time(0), zone).astimezone(UTC)
    end = datetime.combine(days.last + timedelta(days=1), time(0), zone).astimezone(UTC)
    stmt = sa.select(Consultation).where(
        Consultation.clinic_id == clinic_id, Consultation.starts_at >= start, Consultation.starts_at < end
    )
    if days.provider_id is not None:
        stmt = stmt.where(Consultation.provider_id == days.provider_id)
    if status is not None:
        stmt = stmt.where(Consultation.status == status)
    return list(session.scalars(stmt.order_by(Consultation.starts_at, Consultation.id)))


def scheduled_of_owner(*, session: UnitOfWork, clinic_id: int, user_id: int) -> list[Consultation]:
    """The scheduled consultations of the leads a coordinator owns (their calendar feed)."""
    return list(
        session.scalars(
            sa.select(Consultation)
            .join(Lead, Lead.id == Consultation.lead_id)
            .where(
                Consultation.clinic_id == clinic_id,
                Consultation.status == ConsultationStatus.SCHEDULED,
                Lead.assigned_to_id == user_id,
                Lead.deleted_at.is_(None),
            )
            .order_by(Consultation.starts_at, Consultation.id)
        )
    )
