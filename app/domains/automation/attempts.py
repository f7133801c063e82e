"""Which failed attempts count toward the break-up, and the clinic's cadence that plans the next one.

A call nobody answered (voicemail, no answer, wrong number) has failed the moment it is logged. A
text or email has failed only once its reply window (a business day by default) has passed since it
was actually sent (the provider took it; a message still queued has not started its window) with no
answer. At most one failed attempt a business day counts: a voicemail and two texts the same
morning are one. A contact ends the run (activities/rules.py defines both).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.domains.activities import rules as activity_rules
from app.domains.activities.models import LeadActivity
from app.domains.auth.models import Clinic
from app.domains.automation import rules
from app.domains.business_hours.rules import calendar_of
from app.domains.outbound.models import Notification
from app.platform.db import UnitOfWork

_LOOKBACK = 50
# The default cadence (seed 001): the initial contact call at once, then a call and a text the
# next business day, then a call two business days later; a third failure brings the break-up.
DEFAULT_CADENCE = {
    "touches": [
        {"after_business_days": 1, "channels": ["call", "sms"]},
        {"after_business_days": 2, "channels": ["call"]},
    ],
    "reply_window_business_days": 1,
}


def is_call(activity_type: str | None) -> bool:
    return activity_type in activity_rules.CALL


def clinic_of(session: UnitOfWork, clinic_id: int) -> Clinic:
    return session.get(Clinic, clinic_id)


def business_days_later(clinic: Clinic, start: datetime, days: int) -> datetime:
    """`days` of the clinic's open days after `start` (the cadence's delays and reply window)."""
    return rules.after_delay(start, {"amount": days, "unit": "business_days"}, calendar_of(clinic))


def cadence_of(clinic: Clinic) -> dict:
    """The clinic's cadence (settings.cadence), its defaults filled in."""
    return {**DEFAULT_CADENCE, **((clinic.settings or {}).get("cadence") or {})}


@dataclass(frozen=True)
class Attempt:
    """One attempt since the last contact: `failed_at` is when it counts (None: its reply window is
    still open, or the message has not gone yet); `counted`: it is the one of its business day."""

    activity_id: int
    type: str
    made_at: datetime
    failed_at: datetime | None
    counted: bool = False


def since_last_contact(
    session: UnitOfWork, lead_id: int, as_of: datetime
) -> tuple[list[Attempt], int | None]:
    """The lead's attempts since its last contact (oldest first), as of `as_of`, and that contact's
    activity id (None: never contacted)."""
    rows = session.execute(
        sa.select(
            LeadActivity.id,
            LeadActivity.type,
            LeadActivity.direction,
            LeadActivity.outcome,
            LeadActivity.details,
            LeadActivity.occurred_at,
            LeadActivity.clinic_id,
        )
        .where(
            LeadActivity.lead_id == lead_id,
            LeadActivity.occurred_at <= as_of,
            sa.or_(activity_rules.contact_clause(), activity_rules.attempt_clause()),
        )
        .order_by(LeadActivity.occurred_at.desc(), LeadActivity.id.desc())
        .limit(_LOOKBACK)
    ).all()
    made, last_contact = [], None
    for row in rows:
        if activity_rules.is_contact(type=row.type, direction=row.direction, outcome=row.outcome):
            last_contact = row.id
            break
        if activity_rules.is_attempt(
            type=row.type, direction=row.direction, outcome=row.outcome, details=row.details
        ):
            made.append(row)
    if not made:
        return [], last_contact
    clinic = session.get(Clinic, made[0].clinic_id)
    window = cadence_of(clinic)["reply_window_business_days"]
    zone = calendar_of(clinic).zone
    sent = _sent_times(session, [(row.details or {}).get("notification_id") for row in made])
    attempts, days = [], set()
    for row in reversed(made):
        if is_call(row.type):
            made_at = failed_at = row.occurred_at
        else:
            notification_id = (row.details or {}).get("notification_id")
            # A message logged by hand went when it was logged; one the engine sends, when it went.
            made_at = sent.get(notification_id) if notification_id is not None else row.occurred_at
            failed_at = business_days_later(clinic, made_at, window) if made_at is not None else None
        counts = failed_at is not None and failed_at <= as_of
        day = made_at.astimezone(zone).date() if made_at is not None else None
        counted = counts and day not in days
        if counted:
            days.add(day)
        attempts.append(Attempt(row.id, row.type, made_at or row.occurred_at, failed_at, counted))
    return attempts, last_contact


def _sent_times(session: UnitOfWork, notification_ids: list) -> dict[int, datetime]:
    ids = [i for i in notification_ids if isinstance(i, int)]
    if not ids:
        return {}
    return dict(
        session.execute(
            sa.select(Notification.id, Notification.sent_at).where(
                Notification.id.in_(ids), Notification.sent_at.is_not(None)
            )
        ).all()
    )


def failed_in_a_row(session: UnitOfWork, lead_id: int, as_of: datetime) -> int:
    """Failed attempts counted since the last contact (at most one a business day)."""
    attempts, _ = since_last_contact(session, lead_id, as_of)
    return sum(1 for attempt in attempts if attempt.counted)
