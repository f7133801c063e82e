"""When a lead answers the phone: answered-call rates by local hour of week, Beta-smoothed toward
a wider rate, and the clinic's open hours ranked by them. Pure: no I/O, no clock, no database."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.domains.business_hours.rules import BusinessCalendar


HOURS_OF_WEEK = 7 * 24
# Pseudo-calls of the prior: a slot with 20 calls is about half its own rate, half the wider rate.
PRIOR_STRENGTH = 20.0
# A source gets its own table once it has this many calls; below, the clinic's table stands for it.
MIN_SOURCE_CALLS = 300
SLOTS_SHOWN = 3
SEARCH_DAYS = 7


def hour_of_week(moment: datetime, zone) -> int:
    """0 = Monday 00:00-01:00 local, 167 = Sunday 23:00-24:00."""
    local = moment.astimezone(zone)
    return local.weekday() * 24 + local.hour


@dataclass(frozen=True)
class ContactRates:
    """Smoothed answer rates for each hour of the week, with the calls each rests on."""

    rates: tuple[float, ...]
    calls: tuple[int, ...]
    answered: tuple[int, ...]
    overall: float
    scope: str  # "clinic", "source" or "prior" (no calls at all)

    def rate(self, slot: int) -> float:
        return self.rates[slot]


def tally(calls: Iterable[tuple[int, bool]]) -> tuple[list[int], list[int]]:
    """(calls, answered) per hour of week from (hour_of_week, answered) pairs."""
    return tally_counts((slot, was_answered, 1) for slot, was_answered in calls)


def tally_counts(counts: Iterable[tuple[int, bool, int]]) -> tuple[list[int], list[int]]:
    """(calls, answered) per hour of week from (hour_of_week, answered, how many calls) counts."""
    total, answered = [0] * HOURS_OF_WEEK, [0] * HOURS_OF_WEEK
    for slot, were_answered, calls in counts:
        total[slot] += calls
        answered[slot] += calls if were_answered else 0
    return total, answered


def smooth(
    calls: Sequence[int],
    answered: Sequence[int],
    prior: Sequence[float] | float | None = None,
    strength: float = PRIOR_STRENGTH,
    scope: str = "clinic",
) -> ContactRates:
    """Beta-smoothed rates: (answered + k*p) / (calls + k), with p the prior rate of the slot.

    Without a prior, p is the table's own overall rate (Laplace-smoothed, so an empty table is 0.5).
    """
    n, a = sum(calls), sum(answered)
    overall = (a + 1.0) / (n + 2.0)
    if prior is None:
        prior = overall
    priors = [prior] * HOURS_OF_WEEK if isinstance(prior, int | float) else list(prior)
    rates = tuple((answered[s] + strength * priors[s]) / (calls[s] + strength) for s in range(HOURS_OF_WEEK))
    return ContactRates(
        rates=rates,
        calls=tuple(calls),
        answered=tuple(answered),
        overall=overall,
        scope=scope if n else "prior",
    )


def top_slots(rates: ContactRates, allowed: Iterable[int], count: int = SLOTS_SHOWN) -> list[int]:
    """The `count` allowed hours of week with the highest rates (ties: the better-sampled first)."""
    return sorted(allowed, key=lambda s: (-rates.rates[s], -rates.calls[s], s))[:count]


@dataclass(frozen=True)
class Slot:
    """One upcoming hour to call: its start (UTC), local hour of week, rate and sample size."""

    starts_at: datetime
    ends_at: datetime
    hour_of_week: int
    rate: float
    calls: int


def is_open_at(calendar: BusinessCalendar, moment: datetime) -> bool:
    """Inside one of the day's open periods (a lunch break is closed)."""
    return calendar.is_open(moment)


def open_hours(calendar: BusinessCalendar, start: datetime, days: int = SEARCH_DAYS) -> list[Slot]:
    """Each open hour from `start` over `days` days (the current hour from `start` on), rate-less.

    Hours are cut to each open period of the day, so a lunch break is never offered."""
    zone = calendar.zone
    out = []
    local_start = start.astimezone(zone)
    for offset in range(days + 1):
        for opens, closes in calendar.windows(local_start.date() + timedelta(days=offset)):
            cursor = opens.replace(minute=0, second=0, microsecond=0)
            while cursor < closes:
                # Whole local hours; a period opening at 08:30 gives 08:30-09:00 first.
                begin, end = max(cursor, opens, start), min(cursor + timedelta(hours=1), closes)
                if begin < end and begin < start + timedelta(days=days):
                    slot = cursor.weekday() * 24 + cursor.hour
                    out.append(Slot(begin.astimezone(UTC), end.astimezone(UTC), slot, 0.0, 0))
                cursor += timedelta(hours=1)
    return out


def best_upcoming(
    rates: ContactRates, calendar: BusinessCalendar, start: datetime, count: int = SLOTS_SHOWN
) -> list[Slot]:
    """The `count` best open hours of the next week, best first (ties: the sooner)."""
    candidates = open_hours(calendar, start)
    ranked = sorted(candidates, key=lambda s: (-rates.rates[s.hour_of_week], s.starts_at))
    seen, picked = set(), []
    for slot in ranked:
        if slot.hour_of_week in seen:  # the same hour next week is not another choice
            continue
        seen.add(slot.hour_of_week)
        picked.append(
            Slot(
                slot.starts_at,
                slot.ends_at,
                slot.hour_of_week,
                rates.rates[slot.hour_of_week],
                rates.calls[slot.hour_of_week],
            )
        )
        if len(picked) == count:
            break
    return picked


def best_within(
    rates: ContactRates, calendar: BusinessCalendar, earliest: datetime, window: timedelta
) -> datetime | None:
    """The start of the best open hour between `earliest` and `earliest + window` (None: none open).

    Ties go to the sooner hour, so a clinic without call history keeps its first open moment.
    """
    days = max(1, math.ceil(window.total_seconds() / 86400))
    hours = [s for s in open_hours(calendar, earliest, days) if s.starts_at <= earliest + window]
    if not hours:
        return None
    best = min(hours, key=lambda s: (-rates.rates[s.hour_of_week], s.starts_at))
    return best.starts_at
