"""Sequences' sweep that beat calls: a follow-up pass job for each clinic at an open send window."""

from datetime import datetime

from celery import shared_task

from app.domains.sequences import follow_up_pass
from app.platform.app_db import get_db, unit_of_work
from app.platform.db import database_now


@shared_task(name="sequences.schedule_follow_up_passes")
def schedule_follow_up_passes(now: str | None = None) -> int:
    """`now` (ISO 8601, aware) stands in for the clock: a re-run for a given moment, and tests."""
    moment = datetime.fromisoformat(now) if now else database_now(get_db())
    with unit_of_work() as session:
        return follow_up_pass.schedule_due(session=session, now=moment)
