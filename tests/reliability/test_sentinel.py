"""Redis through Sentinel, failing over: the master killed -9, the replica promoted by three
Sentinels. Every process of the Procfile (web, stream, the workers, beat, Flower), each started from
its own Procfile line, lives through it; captures answer 201 or 503 (never 500), each lead captured
before, during and after gets exactly one call task, jobs in flight run once, rate limits work on
the new master, and a stream opened before the failover delivers an event made after it. Real
redis-server, redis-sentinel and Procfile processes (tests/sentinel.py, tests/procfile.py); the
app's clients, the stream's subscription, the rate limiter and Celery all reach Redis through the
Sentinels."""

from __future__ import annotations

import time

import httpx
import pytest
import redis
import sqlalchemy as sa

from app import create_app
from app.devtools.local_redis import free_port
from app.domains.outbound.models import Notification
from app.domains.tasks.models import LeadTask
from app.platform import clock
from tests.conftest import test_settings
from tests.leadkit import create_lead
from tests.ledger import effects, status_counts
from tests.procfile import PORT_VARIABLES, ProcfileProcess, wait_ready
from tests.reliability.conftest import FAST, WORKER_ENV
from tests.reliability.test_broker_restart import Capturing
from tests.reliability.test_faults import add_jobs, specs
from tests.sentinel import sentinel_cluster
from tests.stream.kit import StreamReader
from tests.workers import FLOWER_AUTH, flower_api, wait_for, worker_env

pytestmark = pytest.mark.reliability

RATE_LIMIT = 5
# Every long-running process of the Procfile (`release` runs once, before them), one of each, small.
STACK = ("web", "stream", "worker", "sender", "background", "webhooks", "sweeps", "beat", "flower")
WORKERS = ("worker", "sender", "background", "webhooks", "sweeps")
STACK_ENV = {
    "WEB_CONCURRENCY": "1",
    "WORKER_CONCURRENCY": "1",
    "SENDER_CONCURRENCY": "2",
    "WEBHOOK_CONCURRENCY": "1",
    "FLOWER_BASIC_AUTH": FLOWER_AUTH,
    "FOLLOWUP_RATE_LIMIT_PER_MINUTE": "1000000",  # the captures and the web's calls are one user's
    "FOLLOWUP_STREAM_HEARTBEAT_SECONDS": "2",
}


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


def _procfile_stack(settings, tmp_path) -> dict[str, ProcfileProcess]:
    """Each process from its own Procfile line, with this test's settings (through the Sentinels)."""
    env = worker_env(settings, **WORKER_ENV, **STACK_ENV, BEAT_SCHEDULE_FILE=str(tmp_path / "beat-schedule"))
    ports = {PORT_VARIABLES[kind]: str(free_port()) for kind in STACK if kind in PORT_VARIABLES}
    return {kind: ProcfileProcess(kind, {**env, **ports}, tmp_path) for kind in STACK}


def _new_task(web: int, tenant, lead_id: int, user_id: int, title: str) -> int:
    """A task for `user_id` through the Procfile's web (its `task.assigned` goes to their stream)."""
    answer = httpx.post(
        f"http://127.0.0.1:{web}/api/leads/{lead_id}/tasks",
        json={"title": title, "type": "CALL", "due_in_minutes": 60, "assigned_to_id": user_id},
        headers=tenant.headers("clinic_admin"),
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _task_event(reader: StreamReader, task_id: int, timeout: float = 60) -> dict:
    return reader.wait_for(
        lambda e: e["event"] == "task.assigned" and e["data"]["task"]["id"] == task_id, timeout=timeout
    )


@pytest.mark.timeout(900)  # nine processes started on a shared machine, a failover, a minute of checks
def test_a_sentinel_failover_is_survived_by_every_process_and_each_lead_gets_one_call_task(
    migrated_database, cluster, tenant, tmp_path
):
    app = _app(migrated_database, cluster, **FAST)
    limited = _app(migrated_database, cluster, rate_limit_per_minute=RATE_LIMIT)
    settings, db = app.config["SETTINGS"], app.extensions["followup.db"]
    headers = tenant.headers()
    first_master = cluster.master.port
    coordinator = tenant.users["treatment_coordinator"].id

    # Through the Sentinels, the app's own client and the rate limiter write on the master.
    assert app.test_client().get("/readyz").status_code == 200
    app.extensions["followup.redis"].set("followup-sentinel-probe", "1")
    assert _on(first_master).get("followup-sentinel-probe") == b"1"
    assert _limited(limited.test_client(), tenant.headers("front_desk")) == [200] * RATE_LIMIT + [429]
    assert _on(first_master).keys("*followup-rl*")  # its counts are on the master

    stack = _procfile_stack(settings, tmp_path)
    try:
        for process in stack.values():
            process.start()
        sender = app.extensions["followup.dispatcher"].celery
        for process in stack.values():
            wait_ready(process, sender, timeout=180)  # the stream's /readyz: subscribed through them
        web, stream, flower_port = stack["web"].port, stack["stream"].port, stack["flower"].port
        lead = create_lead(app.test_client(), tenant, role="clinic_admin")
        events = f"http://127.0.0.1:{stream}/api/me/events"
        with StreamReader(events, tenant.headers("treatment_coordinator")) as opened_before:
            assert opened_before.status == 200
            _task_event(opened_before, _new_task(web, tenant, lead["id"], coordinator, "Before"))
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
            # The stream opened before the failover hears of a task made after it (its process
            # subscribed again through the Sentinels, on the promoted replica).
            after = _task_event(opened_before, _new_task(web, tenant, lead["id"], coordinator, "After"))
        assert after["data"]["task"]["title"] == "After"
        # A stream opened now, by a browser's stream token, works too.
        token = httpx.post(
            f"http://127.0.0.1:{web}/api/me/stream-token", headers=tenant.headers("treatment_coordinator")
        ).json()["token"]
        with StreamReader(f"{events}?token={token}") as opened_after:
            assert opened_after.status == 200
            _task_event(opened_after, _new_task(web, tenant, lead["id"], coordinator, "Later"))

        assert new == cluster.replica.port
        assert {kind: p.alive() for kind, p in stack.items()} == dict.fromkeys(stack, True)  # none exited
        assert httpx.get(f"http://127.0.0.1:{stream}/readyz").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{web}/readyz").status_code == 200
        # Flower followed too: it answers and sees every worker through the new master.
        wait_for(
            lambda: (
                set(WORKERS) <= {h.split("@")[0] for h in flower_api(flower_port, "workers?refresh=1") or {}}
            ),
            timeout=60,
        )
        statuses = capturing.statuses
        assert during > 0  # leads were captured while the Sentinels failed over
        assert {s[1] for s in statuses} <= {201, 503}  # at worst 503, never a 500
        assert all(s[2] for s in statuses if s[1] == 503)  # a 503 says when to try again
        assert any(s[0] == "after" and s[1] == 201 for s in statuses)
        captured = sum(1 for s in statuses if s[1] == 201) + 1  # and the stream's lead

        wait_for(lambda: len(_tasks_per_lead(db)) >= captured, timeout=60, interval=0.2)
        time.sleep(2 * FAST["redispatch_grace_seconds"])  # a late second delivery would show by now
        per_lead = _tasks_per_lead(db)
        assert len(per_lead) == captured
        assert {n for lead_id, n in per_lead.items() if lead_id != lead["id"]} == {1}
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
        assert {kind: p.alive() for kind, p in stack.items()} == dict.fromkeys(stack, True)
    finally:
        for process in stack.values():
            process.kill()
