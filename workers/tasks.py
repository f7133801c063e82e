"""Sweeps of follow-up tasks and leads that beat calls. One service call each."""

from celery import shared_task
from flask import current_app

from app.app_db import get_db, unit_of_work
from app.automation import orphans
from app.db import database_now
from app.pipeline import staleness
from app.tasks.alerts import digest, overdue


@shared_task(name="tasks.mark_overdue")
def mark_overdue() -> int:
    chunk = current_app.config["SETTINGS"].sweep_chunk_rows
    return overdue.mark_overdue_in_chunks(db=get_db(), now=database_now(get_db()), chunk=chunk)


@shared_task(name="pipeline.find_stale_leads")
def find_stale_leads() -> int:
    chunk = current_app.config["SETTINGS"].sweep_chunk_rows
    return staleness.find_stale_leads_in_chunks(db=get_db(), now=database_now(get_db()), chunk=chunk)


@shared_task(name="tasks.send_overdue_digests")
def send_overdue_digests() -> int:
    with unit_of_work() as session:
        return digest.send_overdue_digests(session=session, now=database_now(get_db()))


@shared_task(name="automation.find_orphan_leads")
def find_orphan_leads() -> dict:
    settings = current_app.config["SETTINGS"]
    with unit_of_work() as session:
        return orphans.find_orphan_leads(
            session=session,
            now=database_now(get_db()),
            slice_size=settings.orphan_slice_size,
            max_follow_ups=settings.orphan_tasks_per_run,
        )
