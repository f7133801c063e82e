"""Redis through Sentinel, failing over: the master killed -9, the replica promoted by three
Sentinels. Every process lives through it, captures answer 201 or 503 (never 500), each lead
captured before, during and after gets exactly one call task, jobs in flight run once, and rate
limits work on the new master. Real redis-server, redis-sentinel, worker, beat and Flower processes
(tests/sentinel.py); the app's clients, the rate limiter and Celery all reach Redis through the
Sentinels."""

from __future__ import annotations

import time

import pytest
import redis
import sqlalchemy as sa

from app import create_app
from app.devtools.local_redis import free_port
from app.domains.outbound.models import Notification
from app.domains.tasks.models import LeadTask
from app.platform import clock
from tests.conftest import test_settings
from tests.ledger import effects, status_counts
from tests.reliability.conftest import FAST, WORKER_ENV
from tests.reliability.test_broker_restart import PROCESSES, Capturing
from tests.reliability.test_faults import add_jobs, specs
from tests.sentinel import sentinel_cluster
from tests.workers import (
    flower_api,
    subprocess_beat,
    subprocess_flower,
    subprocess_worker,
    wait_for,
    wait_until_consuming,
)

pytestmark = pytest.mark.reliability

RATE_LIMIT = 5


@pytest.fixture
def cluster(tmp_path):
    with sentinel_cluster(tmp_path / "sentinel") as running:
        yield running


def _app(database_url, cluster, **overrides):
    return create_app(
        test_settings(database_url, cluster.url, redis_sentinel_master=cluster.master_name, **overrides)
    )


def _on(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=2)


def _tasks_per_lead(db) -> dict[int, int]:
    with db.unit_of_work() as session:
        rows = session.execute(sa.select(LeadTask.lead_id, sa.func.count()).group_by(LeadTask.lead_id))
        return dict(rows.all())


def _limited(client, headers) -> list[int]:
    return [client.get("/api/me", headers=headers).status_code for _ in range(RATE_LIMIT + 1)]


def test_a_sentinel_failover_is_survived_by_every_process_and_each_lead_gets_one_call_task(
    migrated_database, cluster, tenant, tmp_path
):
    app = _app(migrated_database, cluster, **FAST)
    limited = _app(migrated_database, cluster, rate_limit_per_minute=RATE_LIMIT)
    settings, db = app.config["SETTINGS"], app.extensions["followup.db"]
    headers = tenant.headers()
    first_master, flower_port = cluster.master.port, free_port()

    # Through the Sentinels, the app's own client and the rate limiter write on the master.
    assert app.test_client().get("/readyz").status_code == 200
    app.extensions["followup.redis"].set("followup-sentinel-probe", "1")
    assert _on(first_master).get("followup-sentinel-probe") == b"1"
    assert _limited(limited.test_client(), tenant.headers("front_desk")) == [200] * RATE_LIMIT + [429]
    assert _on(first_master).keys("*followup-rl*")  # its counts are on the master

    with (
        subprocess_worker(settings, name="worker", queues=PROCESSES["worker"], **WORKER_ENV) as worker,
        subprocess_worker(
            settings, name="background", queues=PROCESSES["background"], concurrency=1, **WORKER_ENV
        ) as background,
        subprocess_worker(
            settings, name="sweeps", queues=PROCESSES["sweeps"], concurrency=1, **WORKER_ENV
        ) as sw,
        subprocess_beat(settings, schedule_file=tmp_path / "beat-schedule", **WORKER_ENV) as beat,
        subprocess_flower(settings, port=flower_port, **WORKER_ENV) as flower,
    ):
        processes = {"worker": worker, "background": background, "sweeps": sw, "beat": beat, "flower": flower}
        for name in PROCESSES:
            wait_until_consuming(app, name)
        wait_for(lambda: flower_api(flower_port, "workers?refresh=1"), timeout=30, interval=0.5)
        with Capturing(app, headers) as capturing:
            wait_for(lambda: len(capturing.statuses) >= 15, timeout=30)
            # Jobs running when the master dies: their messages are unacked, their acks come late.
            slow = specs(tenant, 20, first_due=clock.now(), prefix="slow", payload={"sleep": 0.5})
            add_jobs(app, db, slow)
            wait_for(lambda: effects(db)[0] >= 2, timeout=30, interval=0.02)
            old = cluster.kill_master()
            capturing.phase = "during"
            new = cluster.wait_for_failover(old)
            capturing.phase = "after"
            during = sum(1 for s in capturing.statuses if s[0] == "during")
            wait_for(lambda: len([s for s in capturing.statuses if s[0] == "after"]) >= 30, timeout=60)

        assert new == cluster.replica.port
        assert {name: p.poll() for name, p in processes.items()} == dict.fromkeys(processes)  # none exited
        # Flower followed too: it answers and sees every worker through the new master.
        wait_for(
            lambda: (
                set(PROCESSES)
                <= {h.split("@")[0] for h in flower_api(flower_port, "workers?refresh=1") or {}}
            ),
            timeout=30,
        )
        statuses = capturing.statuses
        assert during > 0  # leads were captured while the Sentinels failed over
        assert {s[1] for s in statuses} <= {201, 503}  # at worst 503, never a 500
        assert all(s[2] for s in statuses if s[1] == 503)  # a 503 says when to try again
        assert any(s[0] == "after" and s[1] == 201 for s in statuses)
        captured = sum(1 for s in statuses if s[1] == 201)

        wait_for(lambda: len(_tasks_per_lead(db)) >= captured, timeout=60, interval=0.2)
        time.sleep(2 * FAST["redispatch_grace_seconds"])  # a late second delivery would show by now
        per_lead = _tasks_per_lead(db)
        assert len(per_lead) == captured and set(per_lead.values()) == {1}
        with db.unit_of_work() as session:
            told = session.execute(
                sa.select(Notification.link, sa.func.count())
                .where(Notification.kind == "new_lead", Notification.channel == "in_app")
                .group_by(Notification.link)
            ).all()
        assert all(count == 1 for _, count in told)
        wait_for(lambda: status_counts(db).get("done", 0) >= len(slow), timeout=60, interval=0.2)
        assert effects(db) == (len(slow), len(slow))  # each job in flight ran exactly once

        # The same app objects, built before the failover, now write on the promoted replica.
        assert app.test_client().get("/readyz").status_code == 200
        app.extensions["followup.redis"].set("followup-sentinel-probe", "2")
        assert _on(new).get("followup-sentinel-probe") == b"2"
        assert _limited(limited.test_client(), tenant.headers("clinic_admin")) == [200] * RATE_LIMIT + [429]
        assert {name: p.poll() for name, p in processes.items()} == dict.fromkeys(processes)
