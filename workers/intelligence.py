"""The nightly intelligence run that beat calls."""

from celery import shared_task

from app import clock
from app.app_db import get_db
from app.intelligence import service


@shared_task(name="intelligence.nightly")
def nightly() -> dict:
    return service.nightly(db=get_db(), now=clock.now())
