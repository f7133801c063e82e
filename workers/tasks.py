"""Sweeps of follow-up tasks and leads that beat calls. One service call each."""

from celery import shared_task

from app.domains.automation import orphans
from app.domains.pipeline import staleness
from app.domains.tasks.alerts import digest, overdue
from app.platform.app_db import get_db, unit_of_work
from app.platform.db import database_now


@shared_task(name="tasks.mark_overdue")
def mark_overdue() -> int:
    db = get_db()
    return overdue.mark_overdue_in_chunks(db=db, now=database_now(db), chunk=db.settings.sweep_chunk_rows)


@shared_task(name="pipeline.find_stale_leads")
def find_stale_leads() -> int:
    db = get_db()
    return staleness.find_stale_leads_in_chunks(
        db=db, now=database_now(db), chunk=db.settings.sweep_chunk_rows
    )


@shared_task(name="tasks.send_overdue_digests")
def send_overdue_digests() -> int:
    now = database_now(get_db())
    with unit_of_work() as session:
        return digest.send_overdue_digests(session=session, now=now)


@shared_task(name="automation.find_orphan_leads")
def find_orphan_leads() -> dict:
    db = get_db()
    now = database_now(db)
    with db.unit_of_work() as session:
        return orphans.find_orphan_leads(
            session=session,
            now=now,
            slice_size=db.settings.orphan_slice_size,
            max_follow_ups=db.settings.orphan_tasks_per_run,
        )
