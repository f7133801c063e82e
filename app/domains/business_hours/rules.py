"""Business-hours arithmetic in a clinic's timezone: several open periods a day, closed weekdays,
public holidays and dated exceptions (a shorter Christmas Eve, a closed day).

Pure logic: no I/O, no clock. Datetimes in and out are timezone-aware; results are UTC.

A clinic's `business_hours` maps a weekday to one period `["09:00", "17:00"]`, several periods
`[["09:00", "12:00"], ["13:00", "17:00"]]`, or null/[] for closed; an optional `exceptions` maps an
ISO date to that day's periods in the same forms (`[]`: closed), overriding weekday and holiday.
A period may close at "24:00", the midnight that ends its day: `["00:00", "24:00"]` every day is a
clinic that never closes.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays as holidays_lib
from dateutil.relativedelta import relativedelta

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXCEPTIONS = "exceptions"
MAX_DAYS_SEARCHED = 366  # a clinic closed for a whole year has no next opening
MAX_PERIODS_A_DAY = 8
MAX_EXCEPTIONS = 400
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MIDNIGHT_CLOSING = "24:00"
# A `time` cannot say 24:00; a period closing at the end of its day holds this and `windows` reads
# it as the next day's midnight, so an always-open clinic has no gap between one day and the next.
END_OF_DAY = time.max

Period = tuple[time, time]


class NeverOpen(ValueError):
    """The clinic has no opening hours within a year of the given moment."""


class InvalidHours(ValueError):
    """Business hours that cannot be read; the message names the day or date at fault."""


def _is_pair(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def parse_periods(where: str, value) -> tuple[Period, ...]:
    """One day's periods, sorted; InvalidHours naming `where` when malformed, reversed or overlapping."""
    if value is None or value == []:
        return ()
    if _is_pair(value):
        value = [value]
    shape = f'{where}: give ["HH:MM", "HH:MM"], a list of such periods, or null for closed'
    if not isinstance(value, list) or not all(_is_pair(p) for p in value):
        raise InvalidHours(shape)
    if len(value) > MAX_PERIODS_A_DAY:
        raise InvalidHours(f"{where}: at most {MAX_PERIODS_A_DAY} periods a day")
    periods = []
    for opens, closes in value:
        if not (_HHMM.match(opens) and (_HHMM.match(closes) or closes == MIDNIGHT_CLOSING)):
            raise InvalidHours(f"{where}: times must be HH:MM (24-hour; a period may close at 24:00)")
        if opens >= closes:
            raise InvalidHours(f"{where}: opening {opens} must be before closing {closes}")
        closing = END_OF_DAY if closes == MIDNIGHT_CLOSING else time.fromisoformat(closes)
        periods.append((time.fromisoformat(opens), closing))
    periods.sort()
    for (_, first_closes), (second_opens, _) in pairwise(periods):
        if second_opens < first_closes:
            raise InvalidHours(f"{where}: periods overlap at {second_opens:%H:%M}")
    return tuple(periods)


def parse_exceptions(value) -> tuple[tuple[date, tuple[Period, ...]], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InvalidHours(f"{EXCEPTIONS}: must be an object keyed by date (YYYY-MM-DD)")
    if len(value) > MAX_EXCEPTIONS:
        raise InvalidHours(f"{EXCEPTIONS}: at most {MAX_EXCEPTIONS} dates")
    out = []
    for key, periods in value.items():
        try:
            day = date.fromisoformat(key) if isinstance(key, str) and len(key) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise InvalidHours(f"{EXCEPTIONS}.{key}: not a date (YYYY-MM-DD)")
        out.append((day, parse_periods(f"{EXCEPTIONS}.{key}", periods)))
    return tuple(sorted(out))


# Full day names a person types ("Monday", "monday"), read as the stored keys ("mon").
DAY_NAMES = dict(
    zip(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"), WEEKDAYS, strict=True)
)


def with_weekday_keys(value):
    """`value` with each day named by its stored key (`Monday`, `MON` and `mon` are all "mon"); a
    key that is no day (nor `exceptions`) is InvalidHours naming it. Anything but an object is
    returned as it is, for validate_business_hours to refuse."""
    if not isinstance(value, dict):
        return value
    keyed: dict = {}
    for key, periods in value.items():
        lowered = key.lower() if isinstance(key, str) else key
        day = lowered if lowered in WEEKDAYS or lowered == EXCEPTIONS else DAY_NAMES.get(lowered)
        if day is None:
            raise InvalidHours(f"unknown weekday {key!r}: use mon..sun or monday..sunday")
        if day in keyed:
            raise InvalidHours(f"{day}: given twice (as {key!r} too)")
        keyed[day] = periods
    return keyed


def validate_business_hours(value) -> None:
    """Raise InvalidHours (naming the weekday or date) unless `value` is a valid business_hours object."""
    if not isinstance(value, dict):
        raise InvalidHours("must be an object keyed by weekday (mon..sun), with optional exceptions")
    unknown = sorted(set(value) - set(WEEKDAYS) - {EXCEPTIONS})
    if unknown:
        raise InvalidHours(f"unknown weekdays: {', '.join(map(str, unknown))}")
    for day in WEEKDAYS:
        parse_periods(day, value.get(day))
    parse_exceptions(value.get(EXCEPTIONS))


@dataclass(frozen=True)
class BusinessCalendar:
    """A clinic's week (weekday → its open periods, empty when closed) in its timezone, with its
    holiday country and dated exceptions (date → that day's periods)."""

    timezone: str
    week: tuple[tuple[Period, ...], ...]
    holiday_country: str | None = None
    exceptions: tuple[tuple[date, tuple[Period, ...]], ...] = ()

    @classmethod
    def from_settings(
        cls, timezone: str, business_hours: dict, holiday_country: str | None
    ) -> BusinessCalendar:
        hours = business_hours or {}
        return cls(
            timezone=timezone,
            week=tuple(parse_periods(day, hours.get(day)) for day in WEEKDAYS),
            holiday_country=holiday_country,
            exceptions=parse_exceptions(hours.get(EXCEPTIONS)),
        )

    @property
    def hours(self) -> tuple[Period | None, ...]:
        """Each weekday's span from first opening to last closing, or None when closed; the
        periods within it (a lunch break) are `week`."""
        return tuple((periods[0][0], periods[-1][1]) if periods else None for periods in self.week)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_holiday(self, day: date) -> bool:
        return self.holiday_country is not None and day in _holidays(self.holiday_country, day.year)

    def periods(self, day: date) -> tuple[Period, ...]:
        """A local day's open periods: its dated exception if any, else its weekday's (none on a holiday)."""
        for exception_day, periods in self.exceptions:
            if exception_day == day:
                return periods
        if self.is_holiday(day):
            return ()
        return self.week[day.weekday()]

    def windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals of a local day, in order, as aware datetimes."""
        return [
            (datetime.combine(day, opens, self.zone), self._closing(day, closes))
            for opens, closes in self.periods(day)
        ]

    def _closing(self, day: date, closes: time) -> datetime:
        if closes == END_OF_DAY:
            return datetime.combine(day + timedelta(days=1), time(0), self.zone)
        return datetime.combine(day, closes, self.zone)

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The local day's span from first opening to last closing, or None when closed; the
        periods within it (a lunch break) are `windows`."""
        windows = self.windows(day)
        return (windows[0][0], windows[-1][1]) if windows else None

    def is_open(self, moment: datetime) -> bool:
        return any(
            opens <= moment < closes for opens, closes in self.windows(moment.astimezone(self.zone).date())
        )


@lru_cache(maxsize=64)
def _holidays(country: str, year: int):
    return holidays_lib.country_holidays(country, years=year)


def _windows_from(calendar: BusinessCalendar, moment: datetime):
    """Open periods ending after `moment`, in order."""
    local = moment.astimezone(calendar.zone)
    for offset in range(MAX_DAYS_SEARCHED):
        for window in calendar.windows(local.date() + timedelta(days=offset)):
            if window[1] > moment:
                yield window
    raise NeverOpen("no business hours within a year")


def next_open(calendar: BusinessCalendar, moment: datetime) -> datetime:
    """`moment` if the clinic is open then, else its next opening (UTC)."""
    opens, _closes = next(_windows_from(calendar, moment))
    return max(opens, moment).astimezone(UTC)


class ClinicHours(Protocol):
    """What a clinic's calendar is made of (app/domains/auth/models.Clinic has these columns)."""

    timezone: str
    business_hours: dict | None
    holiday_country: str | None


def calendar_of(clinic: ClinicHours) -> BusinessCalendar:
    return BusinessCalendar.from_settings(
        clinic.timezone, clinic.business_hours or {}, clinic.holiday_country
    )


def within_business_hours(clinic: ClinicHours, moment: datetime) -> datetime:
    """A call falls inside opening hours: a moment outside them moves to the next opening (the one
    rule for calls made by rules, sequences and the orphan sweep)."""
    try:
        return next_open(calendar_of(clinic), moment)
    except NeverOpen:
        return moment


def local_time_text(clinic: ClinicHours, moment: datetime) -> str:
    """A time as the clinic reads it: "Mon 23 Nov 08:05 (America/New_York)"."""
    local = moment.astimezone(ZoneInfo(clinic.timezone))
    return f"{local:%a %d %b %H:%M} ({clinic.timezone})"


def when_text(clinic: ClinicHours, moment: datetime, now: datetime) -> str:
    """A time soon, as the clinic's staff read it: "at 8:00 AM" today, "Tue 8:00 AM" another day."""
    zone = ZoneInfo(clinic.timezone)
    local = moment.astimezone(zone)
    day = "at" if local.date() == now.astimezone(zone).date() else f"{local:%a}"
    return f"{day} {local:%-I:%M %p}"


def add_business_minutes(calendar: BusinessCalendar, start: datetime, minutes: float) -> datetime:
    """`start` plus `minutes` of open time: a lead at 22:00 Friday is due 5 minutes after Monday's
    opening, one at 11:58 before a 12:00-13:00 lunch 3 minutes after 13:00."""
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


def _clamp(wanted: datetime, windows: list[tuple[datetime, datetime]]) -> datetime:
    """`wanted` if open then; else the next opening that day; else the day's last closing."""
    for opens, closes in windows:
        if wanted < opens:
            return opens
        if wanted <= closes:
            return wanted
    return windows[-1][1]


def add_business_days(calendar: BusinessCalendar, start: datetime, days: int) -> datetime:
    """The same local time `days` open days later (moved into that day's open periods)."""
    local = start.astimezone(calendar.zone)
    day, counted = local.date(), 0
    for _ in range(MAX_DAYS_SEARCHED * 2):
        day += timedelta(days=1)
        windows = calendar.windows(day)
        if not windows:
            continue
        counted += 1
        if counted == days:
            wanted = datetime.combine(day, local.timetz().replace(tzinfo=None), calendar.zone)
            return _clamp(wanted, windows).astimezone(UTC)
    raise NeverOpen("no business hours within a year")


def local_steps_later(timezone: str, anchor: datetime, unit: str, steps: int) -> datetime:
    """`anchor` plus `steps` days, weeks or months on the local calendar of `timezone` (UTC).

    The same local time: a 09:00 New York task stays at 09:00 across a DST change. Months count
    from the anchor, so a series of the 31st goes 31 Jan, 28 Feb, 31 Mar.
    """
    zone = ZoneInfo(timezone)
    wall = anchor.astimezone(zone).replace(tzinfo=None) + relativedelta(**{unit: steps})
    return wall.replace(tzinfo=zone).astimezone(UTC)


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


MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


def month_day(text: str | None) -> tuple[int, int] | None:
    """A yearly date ("01-01", MM-DD) as (month, day); None if empty or not a day every year has
    (29 February is not: a yearly date must come every year)."""
    match = MONTH_DAY.match(text or "")
    if match is None:
        return None
    month, day = int(match[1]), int(match[2])
    if not 1 <= month <= 12 or not 1 <= day <= monthrange(2001, month)[1]:
        return None
    return month, day
