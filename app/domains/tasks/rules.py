"""Pure rules of follow-up tasks: reminder times, recurrence, ordering, what the audit trail keeps.
No I/O, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.domains.business_hours.rules import (
    BusinessCalendar,
    NeverOpen,
    add_business_days,
    add_business_minutes,
    local_steps_later,
    next_open,
)
from app.domains.tasks.models import PRIORITY_RANK, LeadTask, Recurrence, TaskPriority

DEFAULT_REMINDER_OFFSETS_MINUTES = (15,)
DEFAULT_ESCALATION_HOURS = 24
DEFAULT_NO_CONTACT_ESCALATION_HOURS = 24

# The task priority an engine-made task of a high or urgent lead carries at least (issue 60).
LEAD_PRIORITY_FLOOR = {"high": TaskPriority.HIGH, "urgent": TaskPriority.URGENT}


def raised_to_lead(asked: str, lead_priority: str | None) -> str:
    """`asked`, or the lead's priority if that is more urgent: a high lead's task is at least HIGH."""
    floor = LEAD_PRIORITY_FLOOR.get(lead_priority or "")
    if floor is None:
        return asked
    return min(asked, floor, key=lambda p: PRIORITY_RANK.get(p, len(PRIORITY_RANK)))


def reminder_times(due_at: datetime, offsets_minutes, now: datetime) -> list[tuple[int, datetime]]:
    """(offset, when) for each reminder still in the future; a reminder already past is skipped."""
    wanted = sorted({int(m) for m in offsets_minutes if int(m) > 0}, reverse=True)
    return [(m, due_at - timedelta(minutes=m)) for m in wanted if due_at - timedelta(minutes=m) > now]


_UNITS = {Recurrence.DAILY: "days", Recurrence.WEEKLY: "weeks", Recurrence.MONTHLY: "months"}


def nth_occurrence(anchor: datetime, recurrence: str, interval: int, n: int, timezone: str) -> datetime:
    """The due time of occurrence `n` (the anchor is 0) of a series every `interval` days, weeks or
    months, at the anchor's local time in `timezone`: counted from the anchor, never from the
    previous occurrence, so a monthly series of the 31st comes back to the 31st after February."""
    return local_steps_later(timezone, anchor, _UNITS[Recurrence(recurrence)], interval * n)


def next_occurrence(due_at: datetime, recurrence: str, interval: int = 1, timezone: str = "UTC") -> datetime:
    """The due time after `due_at` in a series every `interval` units (local calendar of `timezone`)."""
    return nth_occurrence(due_at, recurrence, interval, 1, timezone)


# What a series carries to its next occurrence; an edit of "this one" changes the task, not these.
SERIES_FIELDS = ("title", "description", "type", "priority", "assigned_to_id", "reminder_offsets_minutes")


def series_of(task) -> dict:
    """The series' fields as the task has them now, its slot (this occurrence's due time), and its
    anchor with the slot's place after it (`n`): the cadence counts from the anchor."""
    return {**{name: getattr(task, name) for name in SERIES_FIELDS}, **anchored_at(task.due_at)}


def anchored_at(due_at: datetime) -> dict:
    """A series' cadence starting again at `due_at` (a new series, or the series moved)."""
    return {"slot_at": due_at.isoformat(), "anchor_at": due_at.isoformat(), "n": 0}


def next_in_series(task, timezone: str) -> dict | None:
    """Fields of the next occurrence of a recurring task (None when the series has ended), at the
    anchor's local time in `timezone` (the lead's or the clinic's)."""
    series = task.series or series_of(task)
    # A series stored before anchors counts from its current slot.
    anchor = datetime.fromisoformat(series.get("anchor_at") or series["slot_at"])
    n = int(series.get("n") or 0) + 1
    due_at = nth_occurrence(anchor, task.recurrence, task.recurrence_interval or 1, n, timezone)
    if task.recurrence_until and due_at > task.recurrence_until:
        return None
    fields = {name: series.get(name, getattr(task, name)) for name in SERIES_FIELDS}
    nxt = {**series, "slot_at": due_at.isoformat(), "anchor_at": anchor.isoformat(), "n": n}
    return {**fields, "due_at": due_at, "series": nxt}


def task_reminder_offsets(task_offsets: list | None, clinic_settings: dict | None) -> list[int]:
    """The task's own reminder offsets when it has them, else the clinic's."""
    return list(task_offsets) if task_offsets is not None else clinic_reminder_offsets(clinic_settings)


def offset_of_reminder_at(due_at: datetime, reminder_at: datetime) -> int:
    """A reminder time as minutes before due (to the minute), so it moves with the due time."""
    return max(1, round((due_at - reminder_at).total_seconds() / 60))


def clinic_reminder_offsets(settings: dict | None) -> list[int]:
    offsets = (settings or {}).get("reminder_offsets_minutes")
    return list(offsets) if offsets else list(DEFAULT_REMINDER_OFFSETS_MINUTES)


def clinic_escalation_hours(settings: dict | None) -> float:
    return float((settings or {}).get("escalation_hours") or DEFAULT_ESCALATION_HOURS)


def clinic_no_contact_escalation_hours(settings: dict | None) -> float:
    return float((settings or {}).get("no_contact_escalation_hours") or DEFAULT_NO_CONTACT_ESCALATION_HOURS)


def no_contact_deadline(calendar: BusinessCalendar, captured_at: datetime, hours: float) -> datetime:
    """When a lead captured at `captured_at` has gone `hours` without contact, counted on open days.

    The clock starts when the clinic is next open (a lead of Friday night starts on Monday morning);
    each whole 24 hours is one open day later at the same local time (a weekend or a holiday does
    not count: nobody could have called); the rest is business time. A clinic never open counts
    plain hours.
    """
    try:
        start = next_open(calendar, captured_at)
        days, rest = divmod(hours, 24)
        due = add_business_days(calendar, start, int(days)) if days else start
        return add_business_minutes(calendar, due, rest * 60) if rest else due
    except NeverOpen:
        return captured_at + timedelta(hours=hours)


def due_bucket_bounds(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """(end of today, end of this week) in the clinic's local time, as UTC instants.

    The week ends at midnight between Sunday and Monday; on a Sunday "this week" is empty.
    """
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    end_of_today = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
    end_of_week = datetime.combine(today + timedelta(days=7 - today.weekday()), time(0), tzinfo=zone)
    return end_of_today.astimezone(UTC), end_of_week.astimezone(UTC)


# What the audit trail keeps of a task.
TASK_AUDIT_FIELDS = (
    "title",
    "type",
    "priority",
    "assigned_to_id",
    "due_at",
    "status",
    "escalated_at",
    "outcome",
)


def task_summary(task: LeadTask) -> dict:
    """A task as a user's live stream shows it: its audited fields, ids, and its description (PHI:
    left out for a reader without `lead:phi`)."""
    return {"id": task.id, "lead_id": task.lead_id, **audit_snapshot(task), "description": task.description}


def audit_snapshot(task: LeadTask) -> dict:
    """The task's audited fields, datetimes as ISO text."""
    return {
        k: (v.isoformat() if isinstance(v := getattr(task, k), datetime) else v) for k in TASK_AUDIT_FIELDS
    }
