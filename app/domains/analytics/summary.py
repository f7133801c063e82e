"""The analytics summary email to clinic admins: daily or weekly (their preference), or off.

- When: at the digest hour (08:00) in the clinic's local time, like the task digest; a weekly one on
  Mondays. A daily summary covers the previous local day, a weekly one the previous local week
  (Monday to Sunday), each against the period of the same length before it.
- Once per admin and period: the email's dedupe key is `summary:{user}:{frequency}:{first local day}`,
  so two beats, an overlapping sweep or a re-run add nothing (the notification ledger inserts a key
  once), and a worker that dies mid-send leaves a row the ledger's recovery settles (never a
  second email by a second row).
- What: the headline numbers of the reports for the period (app/domains/analytics/trends.py) — new leads
  and their change, conversions and the average days to convert, revenue, spend and ROI, and per
  source its leads, conversions and revenue. Aggregates only: no patient data in the email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from app.domains.analytics import trends
from app.domains.analytics.figures import Cohort
from app.domains.auth.models import Clinic, User
from app.domains.business_hours import rules as hours
from app.domains.outbound import service as notifications
from app.domains.outbound.models import Channel, Notification, NotificationPreference
from app.platform.db import UnitOfWork
from app.platform.roles import Role

SUMMARY = "summary"
DAILY, WEEKLY, OFF = notifications.SUMMARY_FREQUENCIES
SOURCE_LINES = 10


@dataclass(frozen=True)
class Period:
    frequency: str
    first_day: date  # local
    last_day: date  # local, inclusive
    start: datetime  # aware, [start, end)
    end: datetime


def summary_key(user_id: int, period: Period) -> str:
    return f"summary:{user_id}:{period.frequency}:{period.first_day.isoformat()}"


def due_period(now: datetime, zone: str, frequency: str, *, hour: int, window_hours: int) -> Period | None:
    """The period whose summary is due at `now` in `zone` (local time in the digest window; a weekly
    one on Mondays), else None."""
    today = hours.digest_due(now, zone, hour=hour, window_hours=window_hours)
    if today is None or frequency == OFF or (frequency == WEEKLY and today.weekday() != 0):
        return None
    first_day = today - timedelta(days=7 if frequency == WEEKLY else 1)
    start = hours.local_day_bounds(first_day, zone)[0]
    end = hours.local_day_bounds(today, zone)[0]
    return Period(frequency, first_day, today - timedelta(days=1), start, end)


def send_due_summaries(*, session: UnitOfWork, now: datetime, hour: int, window_hours: int) -> int:
    """Queue the summary of every active clinic admin whose period's summary is due and not yet
    queued; returns how many were queued."""
    admins = session.execute(
        sa.select(User.id, User.clinic_id, User.email, User.name, Clinic.timezone,
                  NotificationPreference.summary_frequency)
        .join(Clinic, Clinic.id == User.clinic_id)
        .outerjoin(NotificationPreference, NotificationPreference.user_id == User.id)
        .where(User.role == Role.CLINIC_ADMIN, User.active.is_(True))
        .order_by(User.id)
    ).all()  # fmt: skip
    due = []
    for user_id, clinic_id, email, name, zone, frequency in admins:
        frequency = frequency or notifications.DEFAULT_SUMMARY_FREQUENCY
        found = due_period(now, zone or "UTC", frequency, hour=hour, window_hours=window_hours)
        if found is not None and email:
            due.append((summary_key(user_id, found), user_id, clinic_id, email, name, found))
    sent = set(
        session.scalars(
            sa.select(Notification.dedupe_key).where(Notification.dedupe_key.in_([d[0] for d in due]))
        )
    )
    headlines: dict[tuple, dict] = {}  # one computation per clinic and period, whatever the admins
    messages = []
    for key, user_id, clinic_id, email, name, found in due:
        if key in sent:
            continue
        if (clinic_id, found) not in headlines:
            headlines[(clinic_id, found)] = headline(session=session, clinic_id=clinic_id, period=found)
        messages.append(
            {
                "clinic_id": clinic_id,
                "to_address": email,
                "template": SUMMARY,
                "context": {"user_name": name, **headlines[(clinic_id, found)]},
                "dedupe_key": key,
                "kind": SUMMARY,
                "recipient_user_id": user_id,
                "not_before": notifications.quiet_until_for(session=session, user_id=user_id, now=now),
            }
        )
    return len(notifications.queue_many(session=session, channel=Channel.EMAIL, messages=messages, now=now))


def headline(*, session: UnitOfWork, clinic_id: int, period: Period) -> dict:
    """The summary's figures for one clinic and period (JSON-ready: the email's template context)."""
    span = {"session": session, "cohort": Cohort(clinic_id, period.start, period.end)}
    velocity = trends.lead_velocity(**span)
    converting = trends.time_to_convert(**span)
    money = trends.revenue(**span)
    leads_by_source: dict = {}
    for row in trends.source_trends(**span)["rows"]:
        leads_by_source[row["source_id"]] = leads_by_source.get(row["source_id"], 0) + row["leads"]
    sources = [
        {
            "name": row["name"],
            "leads": leads_by_source.get(row["source_id"], 0),
            "conversions": row["conversions"],
            "revenue": row["revenue"],
        }
        for row in money["rows"]
        if leads_by_source.get(row["source_id"]) or row["conversions"]
    ]
    sources.sort(key=lambda s: (-s["leads"], -s["conversions"], s["name"]))
    return {
        "frequency": period.frequency,
        "first_day": period.first_day.isoformat(),
        "last_day": period.last_day.isoformat(),
        "new_leads": velocity["leads"],
        "previous_leads": velocity["previous_leads"],
        "change_pct": velocity["change_pct"],
        "conversions": converting["conversions"],
        "average_days_to_convert": converting["average_days"],
        "revenue": money["revenue"],
        "spend": money["spend"],
        "roi": money["roi"],
        "sources": sources[:SOURCE_LINES],
    }
