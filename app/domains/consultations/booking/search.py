"""Free slots of a consultation type (or of one provider for a length), from its providers' hours,
the clinic's closures, their calendars' busy blocks and every scheduled consultation that holds
them, whatever booked it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.availability import rules
from app.domains.availability import service as availability
from app.domains.availability.models import ConsultationType
from app.domains.consultations.models import Consultation, ConsultationStatus
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed


@dataclass(frozen=True)
class SlotQuery:
    """Local days [first, last] of a type's slots, optionally of one of its providers."""

    type_id: int
    first: date
    last: date
    provider_id: int | None = None


def free_slots(
    *, session: UnitOfWork, clinic_id: int, query: SlotQuery, now: datetime, booked: bool = True
) -> list[rules.Slot]:
    """The type's free slots over the local days asked (at most MAX_DAYS_ASKED of them); `booked`
    False: the slots its hours offer as if nothing were booked or busy (was a start ever offered?)."""
    if query.last < query.first:
        raise ValidationFailed("to", "on or after from")
    if (query.last - query.first).days >= rules.MAX_DAYS_ASKED:
        raise ValidationFailed("to", f"at most {rules.MAX_DAYS_ASKED} days after from")
    kind = availability.get_type(session=session, clinic_id=clinic_id, type_id=query.type_id)
    plan = availability.plan_search(
        session=session,
        clinic_id=clinic_id,
        kind=kind,
        provider_id=query.provider_id,
        span=(query.first, query.last),
    )
    return _search(session, plan, now, booked=booked)


def _search(
    session: UnitOfWork, plan: availability.SearchPlan, now: datetime, *, booked: bool = True
) -> list[rules.Slot]:
    if not plan.providers:
        return []
    zone = ZoneInfo(plan.clinic.timezone)
    # The span's local days in UTC, widened by a day: a visit or block across midnight still counts.
    since = datetime.combine(plan.span[0] - timedelta(days=1), time(0), zone).astimezone(UTC)
    until = datetime.combine(plan.span[1] + timedelta(days=2), time(0), zone).astimezone(UTC)
    ids = [p.id for p in plan.providers]
    taken: dict[int, list] = {pid: [] for pid in ids}
    if booked:
        for provider_id, start, end in held(session, ids, since, until):
            taken[provider_id].append((start, end))
        for provider_id, start, end in availability.busy_blocks(session, ids, since, until):
            taken[provider_id].append((start, end))
    times = [rules.ProviderTime(pid, plan.calendars[pid], taken[pid]) for pid in ids]
    return rules.free_slots(times, plan.rules, plan.span, plan.closed, now)


def held(session: UnitOfWork, provider_ids: list[int], since: datetime, until: datetime):
    """(provider_id, start, held until) of the scheduled consultations holding the providers' time
    within [since, until): one indexed range read."""
    return session.execute(
        sa.select(Consultation.provider_id, Consultation.starts_at, Consultation.blocked_until).where(
            Consultation.provider_id.in_(provider_ids),
            Consultation.status == ConsultationStatus.SCHEDULED,
            Consultation.starts_at < until,
            Consultation.blocked_until > since,
        )
    ).all()


def nearest_free(
    *,
    session: UnitOfWork,
    consultation: Consultation,
    kind: ConsultationType | None,
    now: datetime,
    count: int,
) -> list[rules.Slot]:
    """The free slots nearest the consultation's wanted start (a week either side), of its type's
    providers, or of its provider alone for its length when it has no type."""
    zone = ZoneInfo(session.get(Clinic, consultation.clinic_id).timezone)
    day = consultation.starts_at.astimezone(zone).date()
    span = (max(day - timedelta(days=7), now.astimezone(zone).date()), day + timedelta(days=7))
    if kind is None:  # its provider alone, for its length, under the clinic's settings
        kind = ConsultationType(
            id=0,
            clinic_id=consultation.clinic_id,
            duration_minutes=consultation.duration_minutes,
            provider_ids=[consultation.provider_id],
            active=True,
        )
    plan = availability.plan_search(
        session=session, clinic_id=consultation.clinic_id, kind=kind, provider_id=None, span=span
    )
    return rules.nearest(_search(session, plan, now), consultation.starts_at, count)
