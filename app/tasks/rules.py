"""Pure rules of follow-up tasks: reminder times, recurrence, ordering. No I/O, no clock."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.tasks.models import Recurrence

DEFAULT_REMINDER_OFFSETS_MINUTES = (15,)
DEFAULT_ESCALATION_HOURS = 24


def reminder_times(due_at: datetime, offsets_minutes, now: datetime) -> list[tuple[int, datetime]]:
    """(offset, when) for each reminder still in the future; a reminder already past is skipped."""
    wanted = sorted({int(m) for m in offsets_minutes if int(m) > 0}, reverse=True)
    return [(m, due_at - timedelta(minutes=m)) for m in wanted if due_at - timedelta(minutes=m) > now]


def next_occurrence(due_at: datetime, recurrence: str) -> datetime:
    """The due time of the next task of a recurring series."""
    if recurrence == Recurrence.DAILY:
        return due_at + timedelta(days=1)
    if recurrence == Recurrence.WEEKLY:
        return due_at + timedelta(weeks=1)
    year, month = (due_at.year + 1, 1) if due_at.month == 12 else (due_at.year, due_at.month + 1)
    day = min(due_at.day, calendar.monthrange(year, month)[1])  # 31 Jan → 28/29 Feb
    return due_at.replace(year=year, month=month, day=day)


def clinic_reminder_offsets(settings: dict | None) -> list[int]:
    offsets = (settings or {}).get("reminder_offsets_minutes")
    return list(offsets) if offsets else list(DEFAULT_REMINDER_OFFSETS_MINUTES)


def clinic_escalation_hours(settings: dict | None) -> float:
    return float((settings or {}).get("escalation_hours") or DEFAULT_ESCALATION_HOURS)


def due_bucket_bounds(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """(end of today, end of this week) in the clinic's local time, as UTC instants.

    The week ends at midnight between Sunday and Monday; on a Sunday "this week" is empty.
    """
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    end_of_today = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
    end_of_week = datetime.combine(today + timedelta(days=7 - today.weekday()), time(0), tzinfo=zone)
    return end_of_today.astimezone(UTC), end_of_week.astimezone(UTC)
