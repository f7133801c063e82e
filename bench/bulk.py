"""Bulk follow-up at 10,000 leads with real worker processes, and speed-to-lead latency meanwhile.

`make bench BENCH_ARGS=bulk` (SQLite file) or with DATABASE_URL=postgresql://... (a fresh database).
One worker consumes the bulk queue, another the realtime queue (as production would run them). While
the bulk job runs, new leads are captured through the app every 100 ms and the time until each one's
"Initial contact" task exists is measured. Options: --leads=N, --chunk=N, --bulk-concurrency=N.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from app import create_app
from app.domains.auth import service as auth
from app.domains.auth import tokens
from app.domains.auth.models import User
from app.domains.leads.models import Lead, LeadSource
from app.domains.tasks.models import LeadTask
from app.platform import clock, migrate
from app.platform.config import Settings
from bench.common import bench_database, bench_redis, median, percentile, print_table

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-0123456789-abcdefghijklmn"
PHI_KEY = "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ="
ALWAYS_OPEN = {d: ["00:00", "24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return int(flag.split("=", 1)[1].replace("_", ""))
    return default


def _seed(app, n_leads: int) -> tuple[int, int, str]:
    db, now = app.extensions["followup.db"], clock.now()
    with app.app_context(), db.unit_of_work() as session:
        clinic = auth.create_clinic(
            session=session, hooks=session.database.wiring.auth, name="Bench Ortho", now=now
        )
        clinic.business_hours = ALWAYS_OPEN
        users = [
            User(
                clinic_id=clinic.id,
                email=f"c{i}@example.com",
                name=f"C{i}",
                role="clinic_admin" if i == 0 else "treatment_coordinator",
                password_hash="-",
                active=True,
                out_of_office=False,
                created_at=now,
                updated_at=now,
            )
            for i in range(6)
        ]
        session.add_all(users)
        session.flush()
        source_id = session.scalar(sa.select(LeadSource.id).where(LeadSource.clinic_id == clinic.id).limit(1))
        clinic_id, admin_id = clinic.id, users[0].id
        coordinators = [u.id for u in users[1:]]
    with db.engine.begin() as conn:
        for start in range(0, n_leads, 10_000):
            conn.execute(
                sa.insert(Lead),
                [
                    {
                        "clinic_id": clinic_id,
                        "status": "ACTIVE",
                        "pipeline_stage": "contacted",
                        "stage_entered_at": now,
                        "first_name": f"F{i}",
                        "last_name": "L",
                        "preferred_contact": "PHONE",
                        "patient_relationship": "SELF",
                        "source_id": source_id,
                        "source_campaign": "spring-expo",
                        "treatment_interest": [],
                        "assigned_to_id": coordinators[i % 5],
                        "created_at": now,
                        "updated_at": now,
                        "created_by": "bench",
                        "updated_by": "bench",
                    }
                    for i in range(start, min(start + 10_000, n_leads))
                ],
            )
    token = tokens.issue(
        secret=SECRET,
        grant=tokens.TokenGrant(
            user_id=admin_id, clinic_id=clinic_id, kind="access", lifetime=timedelta(hours=2)
        ),
        now=clock.now(),
    )
    return clinic_id, admin_id, token


def _worker(env: dict, name: str, queues: str, concurrency: int, log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.main",
            "worker",
            "--loglevel=WARNING",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--hostname={name}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise TimeoutError(f"gave up waiting for {what}")


def main(flags: list[str]) -> None:
    n_leads = _flag(flags, "leads", 10_000)
    chunk = _flag(flags, "chunk", 500)
    bulk_concurrency = _flag(flags, "bulk-concurrency", 2)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(Path(tmp)) as url,
        bench_redis(Path(tmp)) as redis_url,
    ):
        migrate.upgrade(url)
        settings = Settings(
            env="bench",
            database_url=url,
            redis_url=redis_url,
            secret_key=SECRET,
            phi_encryption_key=PHI_KEY,
            rate_limit_per_minute=0,
            bulk_chunk_size=chunk,
        )
        app = create_app(settings)
        db = app.extensions["followup.db"]
        _, _, token = _seed(app, n_leads)
        headers = {"Authorization": f"Bearer {token}"}
        env = dict(os.environ) | {
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": SECRET,
            "PHI_ENCRYPTION_KEY": PHI_KEY,
            "FOLLOWUP_ENV": "bench",
            "FOLLOWUP_BULK_CHUNK_SIZE": str(chunk),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        workers = [
            _worker(env, "bulkw", "bulk", bulk_concurrency, Path(tmp) / "bulk.log"),
            _worker(env, "rtw", "realtime,notifications", 1, Path(tmp) / "rt.log"),
        ]
        sender = app.extensions["followup.dispatcher"].celery
        try:
            for name in ("bulkw", "rtw"):
                host = f"{name}@{socket.gethostname()}"
                _wait(lambda h=host: sender.control.ping(destination=[h], timeout=0.5), 60, name, 0.2)
            client = app.test_client()

            def count_bulk(bulk_id):
                with db.unit_of_work() as session:
                    return session.scalar(
                        sa.select(sa.func.count())
                        .select_from(LeadTask)
                        .where(LeadTask.dedupe_key.like(f"bulk:{bulk_id}:%"))
                    )

            def has_initial_task(lead_id):
                with db.unit_of_work() as session:
                    return session.scalar(sa.select(LeadTask.id).where(LeadTask.lead_id == lead_id).limit(1))

            # Idle speed-to-lead latency first, as the baseline.
            def capture_and_wait(latencies, stop=None, every=0.1):
                while stop is None or not stop.is_set():
                    started = time.perf_counter()
                    with app.app_context():
                        resp = client.post(
                            "/api/leads", json={"first_name": "New", "last_name": "Lead"}, headers=headers
                        )
                    lead_id = resp.get_json()["id"]
                    _wait(
                        lambda lead_id=lead_id: has_initial_task(lead_id),
                        60,
                        "the Initial contact task",
                        0.005,
                    )
                    latencies.append(time.perf_counter() - started)
                    if stop is None and len(latencies) >= 20:
                        return
                    time.sleep(every)

            idle: list[float] = []
            capture_and_wait(idle)

            busy: list[float] = []
            stop = threading.Event()
            prober = threading.Thread(target=capture_and_wait, args=(busy, stop), daemon=True)
            started = time.perf_counter()
            with app.app_context():
                resp = client.post(
                    "/api/leads/tasks/bulk",
                    json={
                        "filter": {"source_campaign": "spring-expo"},
                        "title": "Thanks for visiting",
                        "type": "CALL",
                        "due_in_minutes": 1440,
                        "assignee_policy": "round_robin",
                    },
                    headers=headers,
                )
            accepted = time.perf_counter() - started
            assert resp.status_code == 202, resp.get_json()
            bulk_id = resp.get_json()["id"]
            prober.start()
            _wait(lambda: count_bulk(bulk_id) >= n_leads, 600, "every bulk task", 0.05)
            elapsed = time.perf_counter() - started
            stop.set()
            prober.join(timeout=60)
            with app.app_context():
                job = client.get(f"/api/bulk-jobs/{bulk_id}", headers=headers).get_json()
        finally:
            for process in workers:
                _stop(process)
        print_table(
            f"Bulk follow-up over {n_leads:,} leads ({db.dialect}; chunks of {chunk}, "
            f"bulk worker concurrency {bulk_concurrency}, realtime worker concurrency 1)",
            ["measure", "value", "target"],
            [
                ["POST /api/leads/tasks/bulk answered (s)", accepted, ""],
                ["time until every task exists (s)", elapsed, "<= 5"],
                ["tasks per second", n_leads / elapsed, ">= 2,000"],
                ["bulk job status / done / failed", f"{job['status']} / {job['done']} / {job['failed']}", ""],
            ],
        )
        print_table(
            "Speed to lead: capture → Initial contact task exists (s)",
            ["while", "n", "median", "p95", "p99", "max", "target p99"],
            [
                ["idle", len(idle), median(idle), percentile(idle, 95), percentile(idle, 99), max(idle), ""],
                [
                    "bulk running",
                    len(busy),
                    median(busy),
                    percentile(busy, 95),
                    percentile(busy, 99),
                    max(busy) if busy else float("nan"),
                    "<= 1",
                ],
            ],
        )
