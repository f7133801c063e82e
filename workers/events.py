"""The events outbox's sweep that beat calls. One service call."""

from datetime import timedelta

from celery import shared_task
from flask import current_app

from app import clock
from app.app_db import unit_of_work
from app.events import recovery


@shared_task(name="events.requeue_unprocessed")
def requeue_unprocessed() -> int:
    settings = current_app.config["SETTINGS"]
    with unit_of_work() as session:
        return recovery.requeue_unprocessed(
            session=session,
            now=clock.now(),
            grace=timedelta(seconds=settings.event_sweep_grace_seconds),
            limit=settings.sweep_batch_size,
        )
