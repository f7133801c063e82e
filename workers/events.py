"""The events outbox's sweep that beat calls. One service call."""

from datetime import timedelta

from celery import shared_task

from app.platform.app_db import get_db
from app.platform.db import database_now
from app.platform.events import recovery


@shared_task(name="events.requeue_unprocessed")
def requeue_unprocessed() -> int:
    db = get_db()
    now, settings = database_now(db), db.settings
    with db.unit_of_work() as session:
        return recovery.requeue_unprocessed(
            session=session,
            now=now,
            grace=timedelta(seconds=settings.event_sweep_grace_seconds),
            limit=settings.sweep_batch_size,
        )
