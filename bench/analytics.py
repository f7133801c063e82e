"""Analytics at scale: every report over 100,000 leads and 1,000,000 activities.

`make bench BENCH_ARGS=analytics` (SQLite file) or with DATABASE_URL=postgresql://... (a fresh
database). Smaller: `BENCH_ARGS="analytics --leads=20000 --activities=200000"`. Data are bulk-loaded
set-based over two years: leads with stage histories, statuses and lost reasons, mixed activities
(calls, emails, SMS, notes; in- and outbound; some automated), and tasks. Each report is timed through
the app (test client) for a month's range and for the whole two years.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from app import create_app
from app.domains.activities.models import LeadActivity
from app.domains.analytics import month_changes, rollups
from app.domains.auth import service as auth
from app.domains.auth import tokens
from app.domains.auth.models import User
from app.domains.leads.models import Lead, LeadSource
from app.domains.pipeline.models import LeadStageHistory
from app.domains.pipeline.rules import DEFAULT_STAGES
from app.domains.tasks.models import LeadTask
from app.platform import clock, migrate
from app.platform.config import Settings
from bench.common import bench_database, bench_redis, median, percentile, print_table

SECRET = "bench-secret-0123456789-abcdefghijklmn"
REPORTS = (
    "funnel",
    "sources",
    "coordinators",
    "lost-reasons",
    "speed-to-lead",
    "follow-up",
    "follow-up-response",
)
REPEAT = 20
BATCH = 10_000
COORDINATORS = 10
REASONS = ("CHOSE_COMPETITOR", "COST_FINANCIAL", "TIMING_NOT_RIGHT", "NO_RESPONSE", "OTHER")


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return int(flag.split("=", 1)[1].replace("_", ""))
    return default


def _insert(conn, model, rows):
    if rows:
        conn.execute(sa.insert(model), rows)


def _seed(app, n_leads: int, n_activities: int) -> tuple[str, dict]:
    db, now, rng = app.extensions["followup.db"], clock.now(), random.Random(7)
    with app.app_context(), db.unit_of_work() as session:
        clinic = auth.create_clinic(
            session=session, hooks=session.database.wiring.auth, name="Bench Ortho", now=now
        )
        users = [
            User(
                clinic_id=clinic.id,
                email=f"b{i}@example.com",
                name=f"B{i}",
                role="clinic_admin" if i == COORDINATORS else "treatment_coordinator",
                password_hash="-",
                active=True,
                out_of_office=False,
                created_at=now,
                updated_at=now,
            )
            for i in range(COORDINATORS + 1)
        ]
        session.add_all(users)
        session.flush()
        sources = session.scalars(sa.select(LeadSource).where(LeadSource.clinic_id == clinic.id)).all()
        for i, source in enumerate(sources):
            source.monthly_cost = 500 + 100 * i
        source_ids, clinic_id = [s.id for s in sources], clinic.id
        coordinator_ids, admin_id = [u.id for u in users[:COORDINATORS]], users[-1].id
    path = [s.slug for s in DEFAULT_STAGES if s.slug != "lost"]
    timings = {}
    started = time.perf_counter()
    leads_meta = []  # (created, coordinator)
    with db.engine.begin() as conn:
        for offset in range(0, n_leads, BATCH):
            rows = []
            for _ in range(offset, min(offset + BATCH, n_leads)):
                created = now - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
                depth = min(len(path), 1 + int(rng.expovariate(0.6)))
                fate = rng.random()
                status = "CONVERTED" if depth >= 6 else ("LOST" if fate < 0.3 else "ACTIVE")
                stage = "lost" if status == "LOST" else path[depth - 1]
                coordinator = rng.choice(coordinator_ids)
                rows.append(
                    {
                        "clinic_id": clinic_id,
                        "status": status,
                        "pipeline_stage": stage,
                        "stage_entered_at": created,
                        "first_name": "F",
                        "last_name": "L",
                        "preferred_contact": "PHONE",
                        "patient_relationship": "SELF",
                        "source_id": rng.choice(source_ids),
                        "treatment_interest": [],
                        "assigned_to_id": coordinator,
                        "lost_reason": rng.choice(REASONS) if status == "LOST" else None,
                        "converted_at": created if status == "CONVERTED" else None,
                        "created_at": created,
                        "updated_at": created,
                        "created_by": "bench",
                        "updated_by": "bench",
                    }
                )
                leads_meta.append((created, coordinator, depth, status))
            _insert(conn, Lead, rows)
        lead_ids = list(conn.scalars(sa.select(Lead.id).where(Lead.clinic_id == clinic_id).order_by(Lead.id)))
        timings["leads"] = time.perf_counter() - started

        started, history, tasks = time.perf_counter(), [], []
        for lead_id, (created, coordinator, depth, status) in zip(lead_ids, leads_meta, strict=True):
            entered = created
            for index in range(depth):
                left = entered + timedelta(hours=rng.randrange(1, 24 * 14))
                last = index == depth - 1 and status != "LOST"
                history.append(
                    {
                        "clinic_id": clinic_id,
                        "lead_id": lead_id,
                        "from_stage": path[index - 1] if index else None,
                        "to_stage": path[index],
                        "entered_at": entered,
                        "left_at": None if last else left,
                        "by": "bench",
                    }
                )
                entered = left
            if status == "LOST":
                history.append(
                    {
                        "clinic_id": clinic_id,
                        "lead_id": lead_id,
                        "from_stage": path[depth - 1],
                        "to_stage": "lost",
                        "entered_at": entered,
                        "left_at": None,
                        "by": "bench",
                    }
                )
            due = created + timedelta(minutes=5)
            done = rng.random() < 0.7
            tasks.append(
                {
                    "clinic_id": clinic_id,
                    "lead_id": lead_id,
                    "title": "Initial contact",
                    "type": "CALL",
                    "priority": "HIGH",
                    "assigned_to_id": coordinator,
                    "due_at": due,
                    "status": "COMPLETED" if done else ("OVERDUE" if status == "ACTIVE" else "CANCELLED"),
                    "completed_at": due + timedelta(minutes=rng.randrange(-4, 60)) if done else None,
                    "origin": {"kind": "speed_to_lead"},
                    "revision": 1,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            if len(history) >= BATCH:
                _insert(conn, LeadStageHistory, history)
                history = []
            if len(tasks) >= BATCH:
                _insert(conn, LeadTask, tasks)
                tasks = []
        _insert(conn, LeadStageHistory, history)
        _insert(conn, LeadTask, tasks)
        timings["stage history + tasks"] = time.perf_counter() - started

        started = time.perf_counter()
        kinds = [
            ("PHONE_CALL", "OUTBOUND", "user:1"),
            ("PHONE_CALL", "INBOUND", "user:1"),
            ("EMAIL", "OUTBOUND", "system"),
            ("SMS", "OUTBOUND", "system"),
            ("SMS", "INBOUND", "user:1"),
            ("NOTE", None, "user:1"),
            ("EMAIL", "OUTBOUND", "user:1"),
        ]
        for offset in range(0, n_activities, BATCH):
            rows = []
            for _ in range(offset, min(offset + BATCH, n_activities)):
                index = rng.randrange(len(lead_ids))
                created = leads_meta[index][0]
                at = created + timedelta(minutes=int(rng.expovariate(1 / 600)))
                type_, direction, actor = rng.choice(kinds)
                rows.append(
                    {
                        "clinic_id": clinic_id,
                        "lead_id": lead_ids[index],
                        "type": type_,
                        "direction": direction,
                        "occurred_at": at,
                        "created_at": at,
                        "actor": actor,
                    }
                )
            _insert(conn, LeadActivity, rows)
        timings["activities"] = time.perf_counter() - started
        # The rows went around the write paths: compute their summaries as migration 0009 does.
        started = time.perf_counter()
        rollups.backfill(conn)
        timings["rollups backfill"] = time.perf_counter() - started
    # The tasks and messages were counted by month as they went in (the triggers of migrations 0070
    # and 0071): their rows of changes folded, as the beat's sweep does within a minute.
    with db.unit_of_work() as session:
        month_changes.fold(session)
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    token = tokens.issue(
        secret=SECRET,
        grant=tokens.TokenGrant(
            user_id=admin_id, clinic_id=clinic_id, kind="access", lifetime=timedelta(hours=2)
        ),
        now=clock.now(),
    )
    return token, timings


def main(flags: list[str]) -> None:
    n_leads = _flag(flags, "leads", 100_000)
    n_activities = _flag(flags, "activities", 1_000_000)
    repeat = _flag(flags, "repeat", REPEAT)
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
            phi_encryption_key="3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ=",
            rate_limit_per_minute=0,
        )
        app = create_app(settings)
        dialect = app.extensions["followup.db"].dialect
        token, timings = _seed(app, n_leads, n_activities)
        print_table(
            f"Bulk load ({dialect}: {n_leads:,} leads, {n_activities:,} activities)",
            ["part", "seconds"],
            [[k, v] for k, v in timings.items()],
        )
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        now = clock.now()
        ranges = {
            "last 30 days": (now - timedelta(days=30), now),
            "two years": (now - timedelta(days=731), now),
        }
        rows = []
        for label, (start, end) in ranges.items():
            for name in REPORTS:
                params = {"from": start.isoformat(), "to": end.isoformat()}
                times = []
                for i in range(repeat + 1):
                    t0 = time.perf_counter()
                    resp = client.get(f"/api/leads/analytics/{name}", query_string=params, headers=headers)
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert resp.status_code == 200, resp.get_json()
                    if i:  # the first call warms caches
                        times.append(elapsed)
                rows.append([label, name, median(times), percentile(times, 95), "<= 100"])
        print_table(
            f"Analytics reports through the app ({dialect}; ms, {repeat} runs each after one warm-up)",
            ["range", "report", "p50", "p95", "target p95"],
            rows,
        )
