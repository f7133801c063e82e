"""The live stream's sweep: events past the Last-Event-ID replay window are deleted."""

from datetime import timedelta

from celery import shared_task

from app.platform.app_db import get_db, unit_of_work
from app.platform.db import database_now
from app.platform.stream import feed


@shared_task(name="stream.purge_old")
def purge_old() -> int:
    db = get_db()
    retention = timedelta(hours=db.settings.stream_retention_hours)
    with unit_of_work() as session:
        return feed.prune(session=session, now=database_now(db), retention=retention)
