"""Consultation rules that need no I/O: the clinic's settings, the replies a reminder takes, which
webhook events still apply. Pure logic: no I/O, no clock."""

from __future__ import annotations

from calendar import monthrange
from datetime import date, datetime, timedelta

from app.domains.business_hours.rules import month_day
from app.domains.consultations.models import ConsultationStatus

DEFAULT_GRACE_MINUTES = 15
MAX_GRACE_MINUTES = 240
MIN_DURATION, MAX_DURATION = 5, 600

# A reply to a reminder, the whole text (any case, blanks and dots ignored).
CONFIRM_WORDS = frozenset({"C", "Y", "YES", "CONFIRM", "CONFIRMED"})
RESCHEDULE_WORDS = frozenset({"R", "RESCHEDULE"})
CONFIRM, RESCHEDULE = "confirm", "reschedule"

# What a booking system's appointment event may say (`status`), and what it makes of it.
WEBHOOK_STATUSES = {
    "booked": ConsultationStatus.SCHEDULED,
    "scheduled": ConsultationStatus.SCHEDULED,
    "rescheduled": ConsultationStatus.SCHEDULED,
    "cancelled": ConsultationStatus.CANCELLED,
    "attended": ConsultationStatus.ATTENDED,
    "checked_in": ConsultationStatus.ATTENDED,
    "no_show": ConsultationStatus.NO_SHOW,
}


def grace_minutes(settings: dict | None) -> int:
    """How long after its start a consultation without a check-in is a no-show (clinic setting
    `no_show_grace_minutes`, 15 by default)."""
    value = (settings or {}).get("no_show_grace_minutes")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_GRACE_MINUTES:
        return value
    return DEFAULT_GRACE_MINUTES


def no_show_due(starts_at: datetime, grace: int) -> datetime:
    return starts_at + timedelta(minutes=grace)


def reply_keyword(body: str | None) -> str | None:
    """What a family's text answers a reminder: confirm, reschedule, or None (anything else)."""
    word = (body or "").strip().strip(".!").strip().upper()
    if word in CONFIRM_WORDS:
        return CONFIRM
    if word in RESCHEDULE_WORDS:
        return RESCHEDULE
    return None


def is_stale(applied_at: datetime | None, occurred_at: datetime) -> bool:
    """Whether a booking system's event is no newer than the last one applied (a replay, or one
    overtaken by a later event that arrived first): it changes nothing."""
    return applied_at is not None and occurred_at <= applied_at


# --- the long timers --------------------------------------------------------------------------------

MAX_RECALL_MONTHS = 60
DEFAULT_RECORDS_REMINDER_DAYS = 7
MAX_RECORDS_DAYS = 365
# Treatment accepted (or started): the lead's long timers are no longer wanted, as on a conversion.
ACCEPTED_STAGES = frozenset({"treatment_accepted", "treatment_started"})
# The hesitations a new benefits year may answer (app/domains/leads/models.py HesitationReason).
BENEFITS_HESITATIONS = ("cost", "financing")
BENEFITS_STAGE = "pending_decision"


def add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months, the month's end clamped: 31 Jan + 1 month = 28 (29) Feb."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def is_benefits_reset_day(settings: dict | None, today: date) -> bool:
    """Whether the clinic's local `today` is its benefits reset date."""
    reset = month_day((settings or {}).get("benefits_reset"))
    return reset is not None and (today.month, today.day) == reset


def _days_setting(settings: dict | None, name: str, low: int) -> int | None:
    value = (settings or {}).get(name)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_RECORDS_DAYS:
        return value
    return None


def records_valid_days(settings: dict | None) -> int | None:
    """How many days an attended consultation's records stay valid (`records_valid_days`); None: off."""
    return _days_setting(settings, "records_valid_days", 1)


def records_reminder_days(settings: dict | None) -> int:
    """How many days before the records expire the family and coordinator are reminded (default 7)."""
    days = _days_setting(settings, "records_reminder_days", 0)
    return DEFAULT_RECORDS_REMINDER_DAYS if days is None else days


def records_dates(consulted_on: date, valid_days: int, reminder_days: int) -> tuple[date, date]:
    """The records' last valid day and the reminder's day (never before the consultation's)."""
    expires_on = consulted_on + timedelta(days=valid_days)
    return expires_on, max(consulted_on, expires_on - timedelta(days=reminder_days))
