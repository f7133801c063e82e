"""Flower tells the truth about the ledger's jobs: a job whose handler failed shows as RETRY while
the ledger will try it again and as FAILURE, with its error, once it is dead; a job that worked shows
as SUCCESS. Real worker and Flower processes, real Redis and database."""

from __future__ import annotations

import pytest

from app.devtools.local_redis import free_port
from app.platform import clock
from tests.ledger import effects, job, status_counts
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.reliability.test_faults import add_jobs, specs
from tests.workers import flower_api, subprocess_flower, subprocess_worker, wait_for, wait_until_consuming

pytestmark = pytest.mark.reliability


def flower_states(port: int, job_id: int) -> list[tuple[str, str]]:
    """(state, exception) of every delivery of the ledger row `job_id` that Flower has seen, oldest
    first."""
    tasks = flower_api(port, "tasks?sort_by=received") or {}
    return [
        (task["state"], task.get("exception") or "")
        for task in tasks.values()
        if task.get("args") in (f"[{job_id}]", f"({job_id},)")
    ]


def finished(seen: list[tuple[str, str]], deliveries: int) -> bool:
    """Whether Flower has seen `deliveries` deliveries of a job and the last one has ended."""
    return len(seen) >= deliveries and seen[-1][0] in ("SUCCESS", "FAILURE")


def test_flower_shows_failed_jobs_as_failure_and_retried_ones_as_retry(app, db, redis, tenant, fast):
    settings = app.config["SETTINGS"]
    now, port = clock.now(), free_port()
    with (
        subprocess_flower(settings, port=port, **WORKER_ENV),
        subprocess_worker(settings, name="told", **WORKER_ENV),
        sweeping(app),
    ):
        wait_until_consuming(app, "told")
        wait_for(lambda: flower_api(port, "workers?refresh=1"), timeout=30, interval=0.5)
        [flaky] = add_jobs(app, db, specs(tenant, 1, first_due=now, prefix="flaky", kind="test.flaky"))
        [doomed] = add_jobs(app, db, specs(tenant, 1, first_due=now, prefix="fails", kind="test.fails"))
        [fine] = add_jobs(app, db, specs(tenant, 1, first_due=now, prefix="fine"))
        wait_for(lambda: status_counts(db) == {"done": 2, "dead": 1}, timeout=30, interval=0.1)
        # The ledger row is final before the task returns, so Flower hears of the last delivery's
        # outcome a moment later: wait until each of them has one.
        deliveries = {doomed: 3, flaky: 3, fine: 1}
        wait_for(lambda: all(finished(flower_states(port, j), n) for j, n in deliveries.items()), timeout=30)
        doomed_seen, flaky_seen, fine_seen = (flower_states(port, j) for j in (doomed, flaky, fine))

    # The dead job: retried twice, then a failure that names the handler's error.
    assert [state for state, _ in doomed_seen] == ["RETRY", "RETRY", "FAILURE"]
    assert "the provider said no" in doomed_seen[-1][1]
    # The job that failed twice then worked: two retries, then a success.
    assert [state for state, _ in flaky_seen] == ["RETRY", "RETRY", "SUCCESS"]
    assert fine_seen == [("SUCCESS", "")]
    # The ledger's own accounting is unchanged: each effect once, the dead job's attempts all spent.
    assert (job(db, doomed).status, job(db, doomed).attempts) == ("dead", 3)
    assert effects(db) == (2, 2)
