"""When to call a lead: answered-call tallies by local hour of week (recounted nightly), the clinic's
smoothed rates, the best open hours of the coming week, and when an automated call task falls due.

The math is in contact_time_rules.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.auth import service as auth
from app.domains.business_hours.rules import calendar_of
from app.domains.intelligence import (
    contact_time_rules,
    queries,
)
from app.domains.intelligence.models import ContactTally
from app.domains.leads import service as leads
from app.platform.db import UnitOfWork
from app.platform.roles import Actor

if TYPE_CHECKING:
    from app.domains.auth.models import Clinic
    from app.domains.leads.models import Lead

CALL_HISTORY_DAYS = 365
# Clinic settings (PUT /api/clinic settings): "first_slot" (default) or "best_slot".
CALL_TIMING_SETTING, CALL_WINDOW_SETTING = "call_timing", "best_slot_window_hours"
BEST_SLOT, DEFAULT_WINDOW_HOURS = "best_slot", 24


def _count_calls(session: UnitOfWork, clinic: Clinic, now: datetime) -> dict[str, tuple[list, list]]:
    """(calls, answered) by hour of week of the clinic's outbound calls of the last year, per scope."""
    by_scope: dict[str, list[tuple[int, bool, int]]] = {"clinic": []}
    for source_id, slot, answered, calls in queries.calls_by_hour(
        session=session,
        clinic_id=clinic.id,
        since=now - timedelta(days=CALL_HISTORY_DAYS),
        zone=calendar_of(clinic).zone,
    ):
        by_scope["clinic"].append((slot, answered, calls))
        by_scope.setdefault(f"source:{source_id}", []).append((slot, answered, calls))
    return {scope: contact_time_rules.tally_counts(counts) for scope, counts in by_scope.items()}


def _tally_rows(clinic: Clinic, counted: dict, now: datetime) -> list[ContactTally]:
    return [
        ContactTally(clinic_id=clinic.id, scope=scope, calls=calls, answered=answered, computed_at=now)
        for scope, (calls, answered) in counted.items()
    ]


def refresh_contact_tallies(*, session: UnitOfWork, clinic: Clinic, now: datetime) -> int:
    """Recount the clinic's outbound calls of the last year by local hour of week (all, and by source)."""
    counted = _count_calls(session, clinic, now)
    session.execute(sa.delete(ContactTally).where(ContactTally.clinic_id == clinic.id))
    session.add_all(_tally_rows(clinic, counted, now))
    session.flush()
    return sum(counted["clinic"][0])


def _first_tallies(session: UnitOfWork, clinic: Clinic, now: datetime) -> dict[str, tuple[list, list]]:
    """A clinic's first tallies, counted on demand (before its first night). Two concurrent first
    counts race on (clinic_id, scope): the loser keeps the winner's rows and uses its own count."""
    counted = _count_calls(session, clinic, now)
    try:
        with session.begin_nested():
            session.add_all(_tally_rows(clinic, counted, now))
    except IntegrityError:
        pass
    return counted


def contact_rates(
    *, session: UnitOfWork, clinic: Clinic, source_id: int | None, now: datetime
) -> contact_time_rules.ContactRates:
    """The clinic's smoothed answer rates; the source's own when it has enough calls."""
    scopes = ("clinic", f"source:{source_id}")
    counted = {
        t.scope: (t.calls, t.answered)
        for t in session.scalars(
            sa.select(ContactTally).where(ContactTally.clinic_id == clinic.id, ContactTally.scope.in_(scopes))
        )
    }
    if "clinic" not in counted:  # never counted (a new clinic, or before the first night)
        counted = _first_tallies(session, clinic, now)
    clinic_rates = contact_time_rules.smooth(*counted["clinic"])
    own = counted.get(f"source:{source_id}")
    if own is not None and sum(own[0]) >= contact_time_rules.MIN_SOURCE_CALLS:
        return contact_time_rules.smooth(own[0], own[1], prior=clinic_rates.rates, scope="source")
    return clinic_rates


def best_contact_times(*, session: UnitOfWork, actor: Actor, lead_id: int, now: datetime) -> dict:
    """GET /api/leads/:id/best-contact-times: the three best open hours of the coming week."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    rates = contact_rates(session=session, clinic=clinic, source_id=lead.source_id, now=now)
    slots = contact_time_rules.best_upcoming(rates, calendar_of(clinic), now)
    return {
        "lead_id": lead.id,
        "timezone": clinic.timezone,
        "scope": rates.scope,
        "overall_rate": round(rates.overall, 4),
        "calls": sum(rates.calls),
        "slots": [_slot_out(slot, clinic) for slot in slots],
    }


def _slot_out(slot: contact_time_rules.Slot, clinic: Clinic) -> dict:
    zone = calendar_of(clinic).zone
    local = slot.starts_at.astimezone(zone)
    return {
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "local_day": local.strftime("%a").lower(),
        "local_hour": local.hour,
        "rate": round(slot.rate, 4),
        "calls": slot.calls,
    }


def best_call_time(*, session: UnitOfWork, clinic: Clinic, lead: Lead, earliest: datetime) -> datetime:
    """When an automated call task falls due: `earliest`, or with the clinic's `call_timing` set to
    `best_slot`, the start of the best-answered open hour within the window after it."""
    settings = clinic.settings or {}
    if settings.get(CALL_TIMING_SETTING) != BEST_SLOT:
        return earliest
    window = timedelta(hours=float(settings.get(CALL_WINDOW_SETTING, DEFAULT_WINDOW_HOURS)))
    rates = contact_rates(session=session, clinic=clinic, source_id=lead.source_id, now=earliest)
    best = contact_time_rules.best_within(rates, calendar_of(clinic), earliest, window)
    return best if best is not None and best > earliest else earliest


def best_time_now(*, session: UnitOfWork, clinic: Clinic, lead: Lead, now: datetime) -> dict | None:
    """The best open hour to call the lead from `now` on, and this hour's answer rate beside it
    (None when the clinic has no call history to judge by, or no open hour in the coming week)."""
    rates = contact_rates(session=session, clinic=clinic, source_id=lead.source_id, now=now)
    calendar = calendar_of(clinic)
    best = contact_time_rules.best_upcoming(rates, calendar, now, count=1)
    if rates.scope == "prior" or not best:
        return None
    slot = best[0]
    open_now = contact_time_rules.is_open_at(calendar, now)
    now_rate = rates.rate(contact_time_rules.hour_of_week(now, calendar.zone)) if open_now else None
    return {
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "rate": round(slot.rate, 4),
        "calls": slot.calls,
        "is_now": slot.starts_at <= now < slot.ends_at,
        "rate_now": None if now_rate is None else round(now_rate, 4),
    }
