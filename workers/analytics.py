"""Analytics sweeps that beat calls: the clinic admins' daily / weekly summary email."""

from datetime import datetime

from celery import shared_task
from flask import current_app

from app import clock
from app.analytics import summary
from app.app_db import unit_of_work


@shared_task(name="analytics.send_summaries")
def send_summaries(now: str | None = None) -> int:
    """`now` (ISO 8601, aware) stands in for the clock: a re-run for a given moment, and tests."""
    settings = current_app.config["SETTINGS"]
    with unit_of_work() as session:
        return summary.send_due_summaries(
            session=session,
            now=datetime.fromisoformat(now) if now else clock.now(),
            hour=settings.digest_hour,
            window_hours=settings.digest_window_hours,
        )
