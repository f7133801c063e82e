"""Staff preferences: channels per kind, quiet hours, SMS number, the summary email's frequency."""

from __future__ import annotations

from datetime import datetime

from app.domains.auth.models import Clinic, User
from app.domains.business_hours import rules as hours
from app.domains.outbound import rules
from app.domains.outbound.models import NotificationPreference
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.roles import Role
from app.platform.scheduling.memo import Memo


class WithoutPreferences(set):
    """A transaction's memo (scheduling.Memo) of the users found without a preferences row: the
    identity map keeps only rows found, and a drainer's batch of new leads notifies the same
    coordinator for each."""


def preferences_of(
    session: UnitOfWork, user_id: int, memo: Memo | None = None
) -> NotificationPreference | None:
    """The user's preferences row, None for defaults; a user without one is looked up once in the
    transaction of `memo` (the caller's job's, if it has one). No autoflush: a user's preferences
    are never new in a transaction that notifies them, and flushing what the caller has pending here
    costs a flush of its own."""
    without = memo.part(WithoutPreferences) if memo is not None else WithoutPreferences()
    if user_id in without:
        return None
    with session.no_autoflush:
        row = session.get(NotificationPreference, user_id)
    if row is None:
        without.add(user_id)
    return row


def get_preferences(*, session: UnitOfWork, user_id: int) -> dict:
    """A user's channels per kind (defaults filled in), quiet hours and SMS number."""
    row = preferences_of(session, user_id)
    chosen = row.channels if row else {}
    return {
        "channels": {kind: rules.channels_for(kind, chosen) for kind in rules.STAFF_KINDS},
        "quiet_hours": {"start": row.quiet_start, "end": row.quiet_end} if row and row.quiet_start else None,
        "sms_number": row.sms_number if row else None,
        "timezone": _user_timezone(session, user_id),
        "summary_frequency": _summary_frequency(session, user_id, row),
    }


def _summary_frequency(session: UnitOfWork, user_id: int, row: NotificationPreference | None) -> str:
    """How often the user gets the analytics summary: clinic admins choose (daily by default); others
    never get it."""
    user = session.get(User, user_id)
    if user is None or user.role != Role.CLINIC_ADMIN:
        return "off"
    return (row.summary_frequency if row else None) or rules.DEFAULT_SUMMARY_FREQUENCY


def put_preferences(*, session: UnitOfWork, user_id: int, clinic_id: int, data: dict, now: datetime) -> dict:
    """Replace the given parts of a user's preferences (channels per kind merge; others replace)."""
    row = session.get(NotificationPreference, user_id)
    if row is None:
        row = NotificationPreference(user_id=user_id, clinic_id=clinic_id, channels={}, updated_at=now)
        session.add(row)
    if "channels" in data:
        row.channels = {**(row.channels or {}), **data["channels"]}
    if "quiet_hours" in data:
        quiet = data["quiet_hours"]
        row.quiet_start, row.quiet_end = (quiet["start"], quiet["end"]) if quiet else (None, None)
    if "sms_number" in data:
        row.sms_number = data["sms_number"]
    if "summary_frequency" in data:
        user = session.get(User, user_id)
        if data["summary_frequency"] != "off" and (user is None or user.role != Role.CLINIC_ADMIN):
            raise ValidationFailed("summary_frequency", "only clinic admins receive the summary email")
        row.summary_frequency = data["summary_frequency"]
    wants_sms = [k for k, chosen in (row.channels or {}).items() if rules.SMS in chosen]
    if wants_sms and not row.sms_number:
        raise ValidationFailed(
            "sms_number", f"give an SMS number to receive {', '.join(sorted(wants_sms))} by SMS"
        )
    row.updated_at = now
    session.flush()
    return get_preferences(session=session, user_id=user_id)


def _user_timezone(session: UnitOfWork, user_id: int) -> str:
    user = session.get(User, user_id)
    if user is None:
        return "UTC"
    return user.timezone or session.get(Clinic, user.clinic_id).timezone or "UTC"


def channels_of(session: UnitOfWork, user_id: int, kind: str) -> list[str]:
    """The channels the user receives `kind` on (their choice, else the default)."""
    return channels_in(preferences_of(session, user_id), kind)


def channels_in(prefs: NotificationPreference | None, kind: str) -> list[str]:
    """The channels `prefs` (a user's preferences row, None for defaults) choose for `kind`."""
    return rules.channels_for(kind, prefs.channels if prefs else None)


def after_quiet_hours(session: UnitOfWork, user_id: int, prefs, now: datetime) -> datetime | None:
    """The end of the user's quiet hours (`prefs`: their preferences row) if `now` falls in them."""
    if prefs is None or not prefs.quiet_start:
        return None
    return hours.quiet_until(now, _user_timezone(session, user_id), prefs.quiet_start, prefs.quiet_end)
