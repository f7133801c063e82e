"""The nightly intelligence run that beat calls."""

from celery import shared_task

from app import clock
from app.intelligence import service


@shared_task(name="intelligence.nightly")
def nightly() -> dict:
    return service.nightly(now=clock.now())
