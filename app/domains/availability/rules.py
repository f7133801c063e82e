"""Free slots: pure arithmetic, no I/O and no clock.

A slot is a start at which one of the type's providers is within their hours for the whole visit,
the clinic is not closed that local day, and the visit plus the buffer after it overlaps nothing the
provider already holds (a scheduled consultation's [start, end + its buffer), a busy block of their
own calendar). Starts are stepped from each opening in real (UTC) minutes and reported in UTC and in
the clinic's local time, so a day after a DST change still opens at its local opening.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.domains.business_hours.rules import BusinessCalendar


Interval = tuple[datetime, datetime]
MAX_DAYS_ASKED = 62


@dataclass(frozen=True)
class SlotRules:
    """How slots are laid out: the visit's length, the buffer after it, the step between starts, the
    minimum notice and the horizon (from now)."""

    duration: timedelta
    buffer: timedelta
    step: timedelta
    notice: timedelta
    horizon: timedelta


@dataclass
class ProviderTime:
    """One provider's week (their hours as a calendar in the clinic's zone) and what they hold."""

    provider_id: int
    calendar: BusinessCalendar
    taken: list[Interval] = field(default_factory=list)

    def __post_init__(self):
        self.taken.sort()
        self._starts = [start for start, _ in self.taken]
        # The latest end among the intervals up to each index: an overlap test by bisection.
        self._reach: list[datetime] = []
        latest = None
        for _, end in self.taken:
            latest = end if latest is None or end > latest else latest
            self._reach.append(latest)

    def is_free(self, start: datetime, end: datetime) -> bool:
        """Nothing held overlaps [start, end)."""
        index = bisect_left(self._starts, end) - 1  # the last interval starting before `end`
        return index < 0 or self._reach[index] <= start


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime
    local_starts_at: datetime
    provider_ids: tuple[int, ...]


def days(first: date, last: date) -> Iterable[date]:
    for offset in range((last - first).days + 1):
        yield first + timedelta(days=offset)


def free_slots(
    providers: list[ProviderTime],
    rules: SlotRules,
    span: tuple[date, date],
    closed: frozenset[date],
    now: datetime,
) -> list[Slot]:
    """The free slots of the local days `span` (inclusive), earliest first, each with the providers
    free then (in the order given)."""
    earliest, latest = now + rules.notice, now + rules.horizon
    by_start: dict[datetime, list[int]] = {}
    for provider in providers:
        for day in days(*span):
            if day in closed:
                continue
            for opens, closes in provider.calendar.windows(day):
                start, closes = opens.astimezone(UTC), closes.astimezone(UTC)
                while start + rules.duration <= closes:
                    if earliest <= start <= latest and provider.is_free(
                        start, start + rules.duration + rules.buffer
                    ):
                        by_start.setdefault(start, []).append(provider.provider_id)
                    start += rules.step
    return [
        Slot(start, start + rules.duration, start.astimezone(providers[0].calendar.zone), tuple(ids))
        for start, ids in sorted(by_start.items())
    ]


def nearest(slots: list[Slot], wanted: datetime, count: int) -> list[Slot]:
    """The `count` slots closest to `wanted` (before or after), in time order."""
    return sorted(
        sorted(slots, key=lambda slot: abs(slot.starts_at - wanted))[:count], key=lambda s: s.starts_at
    )


def closed_days(closures: Iterable[tuple[date, date]], calendar: BusinessCalendar, span: tuple[date, date]):
    """The local days of `span` the clinic is closed: a closure, a public holiday of its country, or
    a dated exception of its business hours that closes the day."""
    closed = set()
    for day in days(*span):
        by_closure = any(first <= day <= last for first, last in closures)
        by_exception = any(d == day and not periods for d, periods in calendar.exceptions)
        if by_closure or by_exception or calendar.is_holiday(day):
            closed.add(day)
    return frozenset(closed)
