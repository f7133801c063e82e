"""Consultations' sweep that beat calls: the clinics' benefits reset date."""

from datetime import datetime

from celery import shared_task

from app.domains.consultations import timers
from app.platform.app_db import get_db, unit_of_work
from app.platform.db import database_now


@shared_task(name="consultations.nudge_benefits")
def nudge_benefits(now: str | None = None) -> int:
    """`now` (ISO 8601, aware) stands in for the clock: a re-run for a given moment, and tests."""
    moment = datetime.fromisoformat(now) if now else database_now(get_db())
    with unit_of_work() as session:
        return timers.nudge_benefits(session=session, now=moment)
