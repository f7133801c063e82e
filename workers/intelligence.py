"""The nightly intelligence run that beat calls."""

from celery import shared_task

from app.app_db import get_db
from app.db import database_now
from app.intelligence import service


@shared_task(name="intelligence.nightly")
def nightly() -> dict:
    db = get_db()
    return service.nightly(db=db, now=database_now(db))
