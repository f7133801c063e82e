"""Business-hours arithmetic in a clinic's timezone, skipping closed weekdays and public holidays.

Pure logic: no I/O, no clock. Datetimes in and out are timezone-aware; results are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS_SEARCHED = 366  # a clinic closed for a whole year has no next opening


class NeverOpen(ValueError):
    """The clinic has no opening hours within a year of the given moment."""


@dataclass(frozen=True)
class BusinessCalendar:
    """A clinic's week (weekday → (open, close) or None) in its timezone, with its holiday country."""

    timezone: str
    hours: tuple[tuple[time, time] | None, ...]
    holiday_country: str | None = None

    @classmethod
    def from_settings(
        cls, timezone: str, business_hours: dict, holiday_country: str | None
    ) -> BusinessCalendar:
        week = []
        for day in WEEKDAYS:
            span = business_hours.get(day)
            week.append(None if not span else (time.fromisoformat(span[0]), time.fromisoformat(span[1])))
        return cls(timezone=timezone, hours=tuple(week), holiday_country=holiday_country)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_holiday(self, day: date) -> bool:
        return self.holiday_country is not None and day in _holidays(self.holiday_country, day.year)

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The open interval of a local day, as aware datetimes, or None when closed."""
        span = self.hours[day.weekday()]
        if span is None or self.is_holiday(day):
            return None
        return (datetime.combine(day, span[0], self.zone), datetime.combine(day, span[1], self.zone))


@lru_cache(maxsize=64)
def _holidays(country: str, year: int):
    return holidays_lib.country_holidays(country, years=year)


def _windows_from(calendar: BusinessCalendar, moment: datetime):
    """Open windows ending after `moment`, in order."""
    local = moment.astimezone(calendar.zone)
    for offset in range(MAX_DAYS_SEARCHED):
        window = calendar.window(local.date() + timedelta(days=offset))
        if window and window[1] > moment:
            yield window
    raise NeverOpen("no business hours within a year")


def next_open(calendar: BusinessCalendar, moment: datetime) -> datetime:
    """`moment` if the clinic is open then, else its next opening (UTC)."""
    opens, _closes = next(_windows_from(calendar, moment))
    return max(opens, moment).astimezone(UTC)


def add_business_minutes(calendar: BusinessCalendar, start: datetime, minutes: float) -> datetime:
    """`start` plus `minutes` of open time: a lead at 22:00 Friday is due 5 minutes after Monday's opening."""
    remaining, start = timedelta(minutes=minutes), start.astimezone(UTC)
    for opens, closes in _windows_from(calendar, start):
        # In UTC: Python adds to and subtracts datetimes of one zone on the wall clock, so across a
        # DST change in an open window a local "+3 h" would be 2 or 4 hours of real time.
        opens, closes = opens.astimezone(UTC), closes.astimezone(UTC)
        begin = max(opens, start)
        if begin + remaining <= closes:
            return begin + remaining
        remaining -= closes - begin
    raise NeverOpen("no business hours within a year")  # pragma: no cover - the generator raises first


def add_business_days(calendar: BusinessCalendar, start: datetime, days: int) -> datetime:
    """The same local time `days` open days later (clamped into that day's hours)."""
    local = start.astimezone(calendar.zone)
    day, counted = local.date(), 0
    for _ in range(MAX_DAYS_SEARCHED * 2):
        day += timedelta(days=1)
        window = calendar.window(day)
        if window is None:
            continue
        counted += 1
        if counted == days:
            wanted = datetime.combine(day, local.timetz().replace(tzinfo=None), calendar.zone)
            return min(max(wanted, window[0]), window[1]).astimezone(UTC)
    raise NeverOpen("no business hours within a year")


# --- quiet hours and local days (staff notifications, the contact policy, digests) -----------------


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, tz: str, start: str | None, end: str | None) -> datetime | None:
    """If `now` falls in the local quiet hours [start, end) — which may span midnight — their end (aware).

    None when there are no quiet hours or `now` is outside them. start == end means no quiet hours.
    """
    if not start or not end or start == end:
        return None
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    begin, finish = parse_hhmm(start), parse_hhmm(end)
    clock = local.time().replace(tzinfo=None)
    if begin < finish:
        inside = begin <= clock < finish
        end_day = local.date()
    else:  # e.g. 21:00 → 07:00
        inside = clock >= begin or clock < finish
        end_day = local.date() + timedelta(days=1) if clock >= begin else local.date()
    if not inside:
        return None
    # Wall-clock end in the zone (a DST gap resolves forward through zoneinfo's fold handling).
    return datetime.combine(end_day, finish, tzinfo=zone)


def digest_due(now: datetime, tz: str, *, hour: int, window_hours: int) -> date | None:
    """The local date whose digest is due at `now` (local time in [hour, hour + window)), else None."""
    local = now.astimezone(ZoneInfo(tz))
    if hour <= local.hour < hour + window_hours:
        return local.date()
    return None


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, as aware datetimes."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
