"""Sweeps of follow-up tasks and leads that beat calls. One service call each."""

from celery import shared_task

from app import clock
from app.db import unit_of_work
from app.pipeline import staleness
from app.tasks import service


@shared_task(name="tasks.mark_overdue")
def mark_overdue() -> int:
    with unit_of_work() as session:
        return service.mark_overdue(session=session, now=clock.now())


@shared_task(name="pipeline.find_stale_leads")
def find_stale_leads() -> int:
    with unit_of_work() as session:
        return staleness.find_stale_leads(session=session, now=clock.now())
