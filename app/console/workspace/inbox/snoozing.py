"""Until when a conversation may be snoozed, in words a person chooses from (issue 76 item 5):
later today (in three hours), tomorrow morning (the clinic's first opening of the next day) and
next week (its first opening from Monday). Worked out in the clinic's timezone and business hours
from the moment given (the caller's clock), never the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.domains.business_hours.rules import ClinicHours, NeverOpen, calendar_of, next_open

LATER_TODAY, TOMORROW_MORNING, NEXT_WEEK = "later_today", "tomorrow_morning", "next_week"
CHOICES = (LATER_TODAY, TOMORROW_MORNING, NEXT_WEEK)
LATER_BY = timedelta(hours=3)
MORNING = time(9)  # a clinic that is never open: its mornings start at nine


def _opening_from(clinic: ClinicHours, day_start: datetime) -> datetime:
    """The clinic's first opening from the local midnight `day_start` (nine that day if it never opens)."""
    try:
        return next_open(calendar_of(clinic), day_start)
    except NeverOpen:
        return datetime.combine(day_start.date(), MORNING, day_start.tzinfo).astimezone(UTC)


def snooze_until(clinic: ClinicHours, now: datetime) -> dict[str, datetime]:
    """Each choice's end (UTC), by its name, as of `now`."""
    zone = ZoneInfo(clinic.timezone)
    today = now.astimezone(zone).date()
    tomorrow = datetime.combine(today + timedelta(days=1), time(0), zone)
    monday = datetime.combine(today + timedelta(days=7 - today.weekday()), time(0), zone)
    return {
        LATER_TODAY: (now + LATER_BY).astimezone(UTC),
        TOMORROW_MORNING: _opening_from(clinic, tomorrow),
        NEXT_WEEK: _opening_from(clinic, monday),
    }
