"""The broker lost and back empty (a managed Redis failing over): every Celery process outlives it,
captures keep answering, and what the empty broker forgot runs once from the ledger. Real redis-server,
real worker and beat processes, real database."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from app import create_app
from app.devtools.local_redis import LocalRedis, free_port
from app.domains.outbound.models import Notification
from app.domains.tasks.models import LeadTask
from app.platform import clock
from tests.conftest import TEST_PASSWORD, test_settings
from tests.ledger import effects
from tests.reliability.conftest import FAST, WORKER_ENV
from tests.reliability.test_faults import add_jobs, specs
from tests.workers import (
    FLOWER_AUTH,
    flower_api,
    subprocess_beat,
    subprocess_flower,
    subprocess_worker,
    wait_for,
    wait_until_consuming,
)

pytestmark = pytest.mark.reliability

# The Procfile's Celery processes, by queues.
PROCESSES = {"worker": "realtime", "background": "notifications,bulk", "sweeps": "sweeps"}


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own: it is stopped and started again empty on the same port."""
    server = LocalRedis(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_app(migrated_database, own_redis):
    settings = test_settings(migrated_database, own_redis.url, **FAST)
    return create_app(settings)


class Capturing:
    """Leads captured through the API from a thread, at a steady pace, until stopped."""

    def __init__(self, app, headers):
        self.client = app.test_client()
        self.headers = headers
        self.statuses: list[tuple[str, int, str | None]] = []
        self.stop = threading.Event()
        self.phase = "before"
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        n = 0
        while not self.stop.is_set():
            body = {"first_name": "Ann", "last_name": f"Restart{n}", "phone": f"+1415555{n:04d}"}
            resp = self.client.post("/api/leads", json=body, headers=self.headers)
            self.statuses.append((self.phase, resp.status_code, resp.headers.get("Retry-After")))
            n += 1
            self.stop.wait(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)


def test_redis_restarted_empty_mid_run_every_process_lives_and_each_lead_gets_one_call_task(
    own_app, own_redis, tenant, tmp_path
):
    settings = own_app.config["SETTINGS"]
    db = own_app.extensions["followup.db"]
    headers = tenant.headers()
    flower_port = free_port()
    with (
        subprocess_worker(settings, name="worker", queues=PROCESSES["worker"], **WORKER_ENV) as worker,
        subprocess_worker(
            settings, name="background", queues=PROCESSES["background"], concurrency=1, **WORKER_ENV
        ) as background,
        subprocess_worker(
            settings, name="sweeps", queues=PROCESSES["sweeps"], concurrency=1, **WORKER_ENV
        ) as sw,
        subprocess_beat(settings, schedule_file=tmp_path / "beat-schedule", **WORKER_ENV) as beat,
        subprocess_flower(settings, port=flower_port, basic_auth=FLOWER_AUTH, **WORKER_ENV) as flower,
    ):
        processes = {"worker": worker, "background": background, "sweeps": sw, "beat": beat, "flower": flower}
        for name in PROCESSES:
            wait_until_consuming(own_app, name)
        wait_for(lambda: flower_api(flower_port, "workers?refresh=1"), timeout=30, interval=0.5)
        with Capturing(own_app, headers) as capturing:
            wait_for(lambda: len(capturing.statuses) >= 15, timeout=30)
            # Jobs running when the broker goes: their messages are unacked, their acks come late.
            slow = specs(tenant, 20, first_due=clock.now(), prefix="slow", payload={"sleep": 0.5})
            add_jobs(own_app, db, slow)
            wait_for(lambda: effects(db)[0] >= 2, timeout=30, interval=0.02)
            own_redis.stop()  # the broker is gone, with everything it held
            capturing.phase = "during"
            outage_ends = time.monotonic() + 5
            probe = own_app.test_client()
            ready = probe.get("/readyz")
            login = probe.post(
                "/api/auth/login",
                json={"email": tenant.users["clinic_admin"].email, "password": TEST_PASSWORD},
            )
            time.sleep(max(0.0, outage_ends - time.monotonic()))
            own_redis.start()  # back, empty, on the same port
            capturing.phase = "after"
            time.sleep(8)  # every process reconnects; captures go on meanwhile
        # /readyz names the broker as down; login, which needs its throttle, says when to try again.
        assert ready.status_code == 503 and ready.get_json()["checks"]["broker"].startswith("error")
        assert login.status_code == 503 and login.headers["Retry-After"]
        alive = {name: process.poll() for name, process in processes.items()}
        assert alive == dict.fromkeys(processes)  # none exited
        # Flower reconnected too: it answers and sees the workers again through the new broker.
        wait_for(
            lambda: (
                set(PROCESSES)
                <= {h.split("@")[0] for h in flower_api(flower_port, "workers?refresh=1") or {}}
            ),
            timeout=30,
        )

        statuses = capturing.statuses
        assert not [s for s in statuses if s[1] >= 500 and s[1] != 503]
        assert all(s[2] for s in statuses if s[1] == 503)  # a 503 says when to try again
        assert {s[1] for s in statuses} <= {201, 503}
        assert any(s[0] == "during" and s[1] == 201 for s in statuses)
        captured = sum(1 for s in statuses if s[1] == 201)

        def tasks_per_lead():
            with db.unit_of_work() as session:
                return dict(
                    session.execute(
                        sa.select(LeadTask.lead_id, sa.func.count()).group_by(LeadTask.lead_id)
                    ).all()
                )

        wait_for(lambda: len(tasks_per_lead()) >= captured, timeout=40, interval=0.2)
        time.sleep(2 * FAST["redispatch_grace_seconds"])  # a late redelivery would show by now
        per_lead = tasks_per_lead()
        assert len(per_lead) == captured and set(per_lead.values()) == {1}
        with db.unit_of_work() as session:
            told = session.execute(
                sa.select(Notification.link, sa.func.count())
                .where(Notification.kind == "new_lead", Notification.channel == "in_app")
                .group_by(Notification.link)
            ).all()
        assert all(count == 1 for _, count in told)
        wait_for(lambda: effects(db)[1] >= len(slow), timeout=60, interval=0.2)  # each slow job ran...
        assert effects(db) == (len(slow), len(slow))  # ...once
        assert {name: p.poll() for name, p in processes.items()} == dict.fromkeys(processes)
