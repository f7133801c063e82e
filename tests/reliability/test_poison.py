"""A job that kills its worker (OOM, hard time limit, a crash in a C extension) ends dead after
max_attempts instead of being resent forever, and a drain goes on past it. Real `celery worker`
subprocesses (prefork: the pool replaces the killed child), real Redis and database.

An attempt counted longer ago than the redispatch grace (2 s here) and not finished is one whose
worker died, so the next delivery counts another (app/platform/scheduling/service.py, count_attempt)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.platform import clock
from app.platform.scheduling.dispatch import Message
from tests.ledger import effects, job, status_counts
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.reliability.test_faults import add_jobs, add_jobs_without_dispatch, specs
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

pytestmark = pytest.mark.reliability


def test_a_job_that_kills_its_worker_ends_dead_and_an_admin_sees_and_retries_it(
    app, client, db, redis, tenant, fast
):
    settings = app.config["SETTINGS"]
    redis.flushdb()  # no message left over from another test (row ids restart with each test)
    with subprocess_worker(settings, name="victim", **WORKER_ENV), sweeping(app):
        wait_until_consuming(app, "victim")
        now = clock.now()
        [poison] = add_jobs(app, db, specs(tenant, 1, first_due=now, prefix="poison", kind="test.kills"))
        wait_for(lambda: job(db, poison).status == "dead", timeout=90, interval=0.2)
        # The worker survived its killed children and still runs other jobs.
        [fine] = add_jobs(app, db, specs(tenant, 1, first_due=clock.now(), prefix="after"))
        wait_for(lambda: job(db, fine).status == "done", timeout=30, interval=0.1)
    row = job(db, poison)
    assert row.attempts == fast.job_max_attempts and row.finished_at is not None
    assert "worker running it was lost" in row.last_error
    assert effects(db) == (1, 1)

    headers = tenant.headers("clinic_admin")
    listed = client.get("/api/jobs?status=dead", headers=headers)
    assert [item["id"] for item in listed.get_json()] == [poison]
    retried = client.post(f"/api/jobs/{poison}/retry", headers=headers)
    assert retried.status_code == 200 and retried.get_json()["attempts"] == 0


def test_a_drain_goes_on_past_a_row_that_kills_its_worker(app, db, redis, tenant, fast):
    settings = app.config["SETTINGS"]
    redis.flushdb()  # no message left over from another test (row ids restart with each test)
    now = clock.now()
    first = specs(tenant, 1, first_due=now - timedelta(seconds=10), prefix="poison", kind="test.drained")
    first[0]["payload"] = {"poison": True}
    behind = specs(
        tenant, 5, first_due=now - timedelta(seconds=5), spread=1, prefix="behind", kind="test.drained"
    )
    [poison] = add_jobs_without_dispatch(app, db, first)
    add_jobs_without_dispatch(app, db, behind)
    with subprocess_worker(settings, name="drainer", **WORKER_ENV):  # no sweeps: one message only
        wait_until_consuming(app, "drainer")
        # One wake-up, for the oldest row, the poison; the rows behind it can run only by a drain.
        # It kills its worker; Celery requeues the message (task_reject_on_worker_lost); that
        # delivery finds the poison's attempt in flight, leaves it and drains the rest.
        app.extensions["followup.dispatcher"].publish([Message(poison, "realtime")])
        wait_for(lambda: status_counts(db).get("done") == 5, timeout=60, interval=0.2)
    assert job(db, poison).status != "done"
    assert effects(db) == (5, 5)  # the five behind it, and nothing of the poison
