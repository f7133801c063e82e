"""Events processing drains: many new leads wake one worker, which processes them all, once each."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app import clock
from app.db import get_db
from app.events.consumers import PROCESS_KIND
from app.scheduling import sweeps
from app.scheduling.models import ScheduledJob
from tests.automation.kit import tasks_of
from tests.leadkit import create_lead
from tests.ledger import queued_job_ids
from tests.workers import thread_worker, wait_for


def _processing_statuses(db) -> list[str]:
    with db.unit_of_work() as session:
        return list(session.scalars(sa.select(ScheduledJob.status).where(ScheduledJob.kind == PROCESS_KIND)))


def _capture(client, tenant, count: int) -> list[int]:
    return [
        create_lead(
            client, tenant, first_name=f"Parent{n}", phone=f"+1415555{n:04d}", email=f"p{n}@example.com"
        )["id"]
        for n in range(count)
    ]


def test_twenty_new_leads_wake_one_worker_which_processes_each_once(app, client, db, redis, tenant):
    leads = _capture(client, tenant, 20)
    # Twenty processing jobs in the ledger, one message on the broker: the first lead's wake-up.
    assert _processing_statuses(db) == ["dispatched"] * 20
    assert len(queued_job_ids(redis, "realtime")) == 1
    with thread_worker(app):
        wait_for(lambda: _processing_statuses(db) == ["done"] * 20, timeout=60)
    assert queued_job_ids(redis, "realtime") == []
    for lead_id in leads:  # speed to lead ran once per lead: one initial call task each
        assert [task.title for task in tasks_of(app, lead_id)] == ["Initial contact"]


def test_a_lost_wake_up_is_recovered_by_the_redispatch_sweep(app, client, db, redis, tenant):
    leads = _capture(client, tenant, 3)
    redis.flushdb()  # the wake-up message and its flag are gone (a flushed or failed-over Redis)
    later = clock.now() + timedelta(seconds=app.config["SETTINGS"].redispatch_grace_seconds + 1)
    with app.app_context():
        assert sweeps.redispatch_stale(db=get_db(), now=later) == 3
    with thread_worker(app):
        wait_for(lambda: _processing_statuses(db) == ["done"] * 3, timeout=60)
    for lead_id in leads:
        assert [task.title for task in tasks_of(app, lead_id)] == ["Initial contact"]
