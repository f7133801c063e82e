"""The numbers as pictures: the analytics services' reports, gathered for the console's charts."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.domains.analytics import service as analytics
from app.platform.db import UnitOfWork

WEEKS = 8


def pictures(*, session: UnitOfWork, clinic_id: int, now: datetime, days: int = 30) -> dict:
    """The funnel, sources' revenue and ROI and coordinators over the last `days`; speed-to-lead per
    week over the last WEEKS weeks."""
    args = {"start": now - timedelta(days=days), "end": now}

    def report(name: str, **over) -> dict:
        return analytics.report(
            session=session, clinic_id=clinic_id, name=name, args={**args, **over}, now=now
        )

    weeks = analytics.speed_to_lead_by_week(session=session, clinic_id=clinic_id, weeks=WEEKS, now=now)
    return {
        "days": days,
        "funnel": report("funnel")["rows"],
        "revenue": report("revenue"),
        "coordinators": report("coordinators")["rows"],
        "speed": weeks,
        "consultations": report("consultations"),
        "bookings": report("bookings"),
    }
