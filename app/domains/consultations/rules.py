"""Consultation rules that need no I/O: the clinic's settings, the replies a reminder takes, which
webhook events still apply. Pure logic: no I/O, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta

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
