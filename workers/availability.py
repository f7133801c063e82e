"""Availability's sweep that beat calls: a read job for each provider's calendar feed due."""

from datetime import datetime, timedelta

from celery import shared_task

from app.domains.availability import feeds
from app.platform.app_db import get_db, unit_of_work
from app.platform.db import database_now


@shared_task(name="availability.read_feeds")
def read_feeds(now: str | None = None) -> int:
    """`now` (ISO 8601, aware) stands in for the clock: a re-run for a given moment, and tests."""
    moment = datetime.fromisoformat(now) if now else database_now(get_db())
    every = timedelta(seconds=get_db().settings.calendar_feed_interval)
    with unit_of_work() as session:
        return feeds.schedule_due(session=session, now=moment, every=every)
