"""The nightly intelligence run that beat calls."""

from celery import shared_task

from app.domains.intelligence import service
from app.platform.app_db import get_db
from app.platform.db import database_now


@shared_task(name="intelligence.nightly")
def nightly() -> dict:
    db = get_db()
    return service.nightly(db=db, now=database_now(db))
