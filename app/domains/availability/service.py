"""Availability's configuration: the booking settings, providers and chairs, consultation types and
closures (admin use cases), and what a slot search needs read in a few statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.availability import rules
from app.domains.availability.models import (
    BookingSettings,
    BusyBlock,
    Closure,
    ConsultationType,
    FeedStatus,
    Provider,
)
from app.domains.business_hours.rules import (
    BusinessCalendar,
    InvalidHours,
    calendar_of,
    validate_business_hours,
    with_weekday_keys,
)
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound, ValidationFailed

SETTING_FIELDS = ("buffer_minutes", "min_notice_minutes", "horizon_days", "slot_step_minutes", "webhook_wins")
DEFAULTS = {
    "buffer_minutes": 0,
    "min_notice_minutes": 120,
    "horizon_days": 60,
    "slot_step_minutes": 15,
    "webhook_wins": False,
}


# --- settings -------------------------------------------------------------------------------------


def settings_of(session: UnitOfWork, clinic_id: int) -> BookingSettings:
    """The clinic's booking settings (the defaults until an admin sets them)."""
    row = session.get(BookingSettings, clinic_id)
    return row if row is not None else BookingSettings(clinic_id=clinic_id, updated_at=None, **DEFAULTS)


def update_settings(*, session: UnitOfWork, clinic_id: int, changes: dict, now: datetime) -> BookingSettings:
    row = session.get(BookingSettings, clinic_id, with_for_update=True)
    if row is None:
        row = session.add(BookingSettings(clinic_id=clinic_id, updated_at=now, **DEFAULTS))
    for name in SETTING_FIELDS:
        if name in changes:
            setattr(row, name, changes[name])
    row.updated_at = now
    session.flush()
    return row


# --- providers ------------------------------------------------------------------------------------


def _checked_hours(hours: dict) -> dict:
    """The hours with each day by its stored key (`monday` is `mon`), or ValidationFailed naming why."""
    try:
        keyed = with_weekday_keys(hours)
        validate_business_hours(keyed)
    except InvalidHours as error:
        raise ValidationFailed("hours", str(error)) from error
    return keyed


def _named_once(session, model, clinic_id: int, name: str, own_id: int | None) -> None:
    clash = session.scalar(
        sa.select(model.id).where(model.clinic_id == clinic_id, sa.func.lower(model.name) == name.lower())
    )
    if clash is not None and clash != own_id:
        raise Conflict(f"the name {name!r} is taken in the clinic", code="name_taken")


def create_provider(*, session: UnitOfWork, clinic_id: int, fields: dict, now: datetime) -> Provider:
    fields = {**fields, "hours": _checked_hours(fields["hours"])}
    _named_once(session, Provider, clinic_id, fields["name"], None)
    provider = Provider(clinic_id=clinic_id, active=True, created_at=now, updated_at=now)
    _apply_provider(provider, fields)
    return session.add(provider, with_id=True)


def _apply_provider(provider: Provider, fields: dict) -> None:
    for name in ("name", "kind", "hours", "active"):
        if name in fields:
            setattr(provider, name, fields[name])
    if "feed_url" in fields:
        provider.feed_url = fields["feed_url"] or None
        provider.feed_status = FeedStatus.PENDING if provider.feed_url else None
        provider.feed_error = None


def get_provider(
    *, session: UnitOfWork, clinic_id: int, provider_id: int, for_update: bool = False
) -> Provider:
    """The clinic's provider; another clinic's is not found."""
    stmt = sa.select(Provider).where(Provider.id == provider_id, Provider.clinic_id == clinic_id)
    provider = session.scalar(stmt.with_for_update() if for_update else stmt)
    if provider is None:
        raise NotFound(f"provider {provider_id} not found")
    return provider


def update_provider(
    *, session: UnitOfWork, clinic_id: int, provider_id: int, fields: dict, now: datetime
) -> Provider:
    provider = get_provider(session=session, clinic_id=clinic_id, provider_id=provider_id, for_update=True)
    if "hours" in fields:
        fields = {**fields, "hours": _checked_hours(fields["hours"])}
    if "name" in fields:
        _named_once(session, Provider, clinic_id, fields["name"], provider.id)
    _apply_provider(provider, fields)
    provider.updated_at = now
    return provider


def list_providers(*, session: UnitOfWork, clinic_id: int) -> list[Provider]:
    return list(
        session.scalars(sa.select(Provider).where(Provider.clinic_id == clinic_id).order_by(Provider.id))
    )


def provider_named(session: UnitOfWork, clinic_id: int, name: str | None) -> Provider | None:
    """The clinic's active provider of that name (any case): how a practice-management system's
    appointment names its provider."""
    if not name:
        return None
    return session.scalar(
        sa.select(Provider).where(
            Provider.clinic_id == clinic_id,
            Provider.active,
            sa.func.lower(Provider.name) == name.strip().lower(),
        )
    )


# --- consultation types ---------------------------------------------------------------------------


def _check_providers(session: UnitOfWork, clinic_id: int, provider_ids: list[int]) -> None:
    known = set(
        session.scalars(
            sa.select(Provider.id).where(Provider.clinic_id == clinic_id, Provider.id.in_(provider_ids))
        )
    )
    unknown = [pid for pid in provider_ids if pid not in known]
    if unknown:
        raise ValidationFailed("provider_ids", f"not providers of the clinic: {unknown}")


def _once_each(fields: dict) -> dict:
    """The type's providers in the order given, each once."""
    if "provider_ids" not in fields:
        return fields
    return {**fields, "provider_ids": list(dict.fromkeys(fields["provider_ids"]))}


def create_type(*, session: UnitOfWork, clinic_id: int, fields: dict, now: datetime) -> ConsultationType:
    fields = _once_each(fields)
    _check_providers(session, clinic_id, fields["provider_ids"])
    _named_once(session, ConsultationType, clinic_id, fields["name"], None)
    kind = ConsultationType(clinic_id=clinic_id, active=True, created_at=now, updated_at=now)
    for name, value in fields.items():
        setattr(kind, name, value)
    return session.add(kind, with_id=True)


def get_type(
    *, session: UnitOfWork, clinic_id: int, type_id: int, for_update: bool = False
) -> ConsultationType:
    """The clinic's consultation type; another clinic's is not found."""
    stmt = sa.select(ConsultationType).where(
        ConsultationType.id == type_id, ConsultationType.clinic_id == clinic_id
    )
    kind = session.scalar(stmt.with_for_update() if for_update else stmt)
    if kind is None:
        raise NotFound(f"consultation type {type_id} not found")
    return kind


def update_type(
    *, session: UnitOfWork, clinic_id: int, type_id: int, fields: dict, now: datetime
) -> ConsultationType:
    kind = get_type(session=session, clinic_id=clinic_id, type_id=type_id, for_update=True)
    fields = _once_each(fields)
    if "provider_ids" in fields:
        _check_providers(session, clinic_id, fields["provider_ids"])
    if "name" in fields:
        _named_once(session, ConsultationType, clinic_id, fields["name"], kind.id)
    for name, value in fields.items():
        setattr(kind, name, value)
    kind.updated_at = now
    return kind


def list_types(*, session: UnitOfWork, clinic_id: int) -> list[ConsultationType]:
    stmt = sa.select(ConsultationType).where(ConsultationType.clinic_id == clinic_id)
    return list(session.scalars(stmt.order_by(ConsultationType.id)))


# --- closures -------------------------------------------------------------------------------------


def create_closure(*, session: UnitOfWork, clinic_id: int, fields: dict, now: datetime) -> Closure:
    ends_on = fields.get("ends_on") or fields["starts_on"]
    if ends_on < fields["starts_on"]:
        raise ValidationFailed("ends_on", "on or after starts_on")
    closure = Closure(clinic_id=clinic_id, created_at=now, **{**fields, "ends_on": ends_on})
    return session.add(closure, with_id=True)


def list_closures(*, session: UnitOfWork, clinic_id: int) -> list[Closure]:
    stmt = sa.select(Closure).where(Closure.clinic_id == clinic_id).order_by(Closure.starts_on, Closure.id)
    return list(session.scalars(stmt))


def delete_closure(*, session: UnitOfWork, clinic_id: int, closure_id: int) -> None:
    closure = session.scalar(
        sa.select(Closure).where(Closure.id == closure_id, Closure.clinic_id == clinic_id)
    )
    if closure is None:
        raise NotFound(f"closure {closure_id} not found")
    session.delete(closure)


# --- what a slot search reads ---------------------------------------------------------------------


@dataclass(frozen=True)
class SearchPlan:
    """A slot search's inputs apart from the booked consultations: the clinic, the type's rules, the
    providers asked about (their calendars), the closed days and the providers' busy blocks."""

    clinic: Clinic
    kind: ConsultationType | None
    rules: rules.SlotRules
    providers: list[Provider]
    calendars: dict[int, BusinessCalendar]
    closed: frozenset[date]
    span: tuple[date, date]


def slot_rules(settings: BookingSettings, kind: ConsultationType | None, duration: int) -> rules.SlotRules:
    """The type's own buffer, notice and horizon where it has them, else the clinic's."""

    def pick(name):
        own = getattr(kind, name, None) if kind is not None else None
        return own if own is not None else getattr(settings, name)

    return rules.SlotRules(
        duration=timedelta(minutes=duration),
        buffer=timedelta(minutes=pick("buffer_minutes")),
        step=timedelta(minutes=settings.slot_step_minutes),
        notice=timedelta(minutes=pick("min_notice_minutes")),
        horizon=timedelta(days=pick("horizon_days")),
    )


def plan_search(
    *,
    session: UnitOfWork,
    clinic_id: int,
    kind: ConsultationType,
    provider_id: int | None,
    span: tuple[date, date],
) -> SearchPlan:
    """What a search of the type's free slots (of one of its providers, if given) over local days needs."""
    if not kind.active:
        raise NotFound(f"consultation type {kind.id} not found")
    allowed = [pid for pid in kind.provider_ids if provider_id is None or pid == provider_id]
    if provider_id is not None and not allowed:
        get_provider(session=session, clinic_id=clinic_id, provider_id=provider_id)  # another clinic's: 404
        raise ValidationFailed("provider", f"provider {provider_id} does not take this consultation type")
    clinic = session.get(Clinic, clinic_id)
    providers = [
        p
        for p in session.scalars(
            sa.select(Provider).where(Provider.clinic_id == clinic_id, Provider.id.in_(allowed))
        )
        if p.active
    ]
    providers.sort(key=lambda p: allowed.index(p.id))
    calendars = {p.id: BusinessCalendar.from_settings(clinic.timezone, p.hours, None) for p in providers}
    closures = session.execute(
        sa.select(Closure.starts_on, Closure.ends_on).where(
            Closure.clinic_id == clinic_id, Closure.ends_on >= span[0], Closure.starts_on <= span[1]
        )
    ).all()
    closed = rules.closed_days([tuple(c) for c in closures], calendar_of(clinic), span)
    settings = settings_of(session, clinic_id)
    return SearchPlan(
        clinic, kind, slot_rules(settings, kind, kind.duration_minutes), providers, calendars, closed, span
    )


def busy_blocks(session: UnitOfWork, provider_ids: list[int], since: datetime, until: datetime):
    """(provider_id, start, end) of the providers' calendar busy blocks overlapping [since, until)."""
    return session.execute(
        sa.select(BusyBlock.provider_id, BusyBlock.starts_at, BusyBlock.ends_at).where(
            BusyBlock.provider_id.in_(provider_ids), BusyBlock.starts_at < until, BusyBlock.ends_at > since
        )
    ).all()
