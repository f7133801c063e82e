"""Leads at scale: the coordinator's board over 100,000 leads, the timeline over 1,000,000 activities.

`make bench BENCH_ARGS=leads` (SQLite file) or with DATABASE_URL=postgresql://... (a fresh database
is created and dropped). Smaller runs: `BENCH_ARGS="leads --leads=20000 --activities=200000"`.
Prints the time of each read through the API (test client, so no network) and the query plans.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from app import create_app
from app.domains.activities.models import LeadActivity
from app.domains.auth import service as auth
from app.domains.auth import tokens
from app.domains.auth.models import User
from app.domains.leads.models import Lead, LeadSource
from app.domains.pipeline.rules import DEFAULT_STAGES
from app.platform import clock, migrate
from app.platform.config import Settings
from bench.common import bench_database, bench_redis, median, percentile, print_table

COORDINATORS = 10
# Names as families have them: common ones repeat (typing "gar" finds every Garcia), which is what
# makes search as you type hard; the email and phone stay unique per lead.
FIRST_NAMES = ("Maria", "James", "Sofia", "Liam", "Emma", "Noah", "Olivia", "Lucas", "Ava", "Mateo")
LAST_NAMES = ("Garcia", "Smith", "Nguyen", "Johnson", "Lopez", "Brown", "Kim", "Patel", "Miller", "Davis")
REPEAT = 100
BATCH = 10_000


def _phone(i: int) -> str:
    """A distinct valid US number for each i (exchange 200-999 of area code 415)."""
    return f"+1415{200 + i // 10_000:03d}{i % 10_000:04d}"


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return int(flag.split("=", 1)[1].replace("_", ""))
    return default


def _seed(app, n_leads: int, n_activities: int) -> dict:
    db = app.extensions["followup.db"]
    now = clock.now()
    rng = random.Random(7)
    with app.app_context(), db.unit_of_work() as session:
        clinic = auth.create_clinic(
            session=session, hooks=session.database.wiring.auth, name="Bench Ortho", now=now
        )
        users = []
        for i in range(COORDINATORS + 1):
            role = "treatment_coordinator" if i < COORDINATORS else "clinic_admin"
            user = User(
                clinic_id=clinic.id,
                email=f"bench{i}@example.com",
                name=f"Bench {i}",
                role=role,
                password_hash="-",
                active=True,
                out_of_office=False,
                created_at=now,
                updated_at=now,
            )
            session.add(user)
            users.append(user)
        session.flush()
        source_ids = list(session.scalars(sa.select(LeadSource.id).where(LeadSource.clinic_id == clinic.id)))
        coordinator_ids = [u.id for u in users[:COORDINATORS]]
        admin_id, clinic_id = users[-1].id, clinic.id
    stages = [s.slug for s in DEFAULT_STAGES]
    started = time.perf_counter()
    with db.engine.begin() as conn:
        for offset in range(0, n_leads, BATCH):
            rows = []
            for i in range(offset, min(offset + BATCH, n_leads)):
                created = now - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
                rows.append(
                    {
                        "clinic_id": clinic_id,
                        "status": "ACTIVE",
                        "pipeline_stage": rng.choice(stages),
                        "stage_entered_at": created,
                        "first_name": f"{FIRST_NAMES[i % 10]}{'' if i % 7 else 'ne'}",
                        "last_name": f"{LAST_NAMES[(i // 10) % 10]}{i // 100 % 37 or ''}",
                        "email": f"lead{i}@example.com",
                        "phone": _phone(i),
                        "preferred_contact": "PHONE",
                        "patient_relationship": "SELF",
                        "source_id": rng.choice(source_ids),
                        "treatment_interest": [],
                        "assigned_to_id": rng.choice(coordinator_ids),
                        "assigned_at": created,
                        "created_at": created,
                        "updated_at": created,
                        "created_by": "bench",
                        "updated_by": "bench",
                    }
                )
            conn.execute(sa.insert(Lead), rows)
        lead_ids = list(conn.scalars(sa.select(Lead.id).where(Lead.clinic_id == clinic_id).order_by(Lead.id)))
        leads_seconds = time.perf_counter() - started
        # Most leads have a handful of activities; one busy lead has a thousand.
        busy_lead = lead_ids[len(lead_ids) // 2]
        started = time.perf_counter()
        for offset in range(0, n_activities, BATCH):
            rows = []
            for i in range(offset, min(offset + BATCH, n_activities)):
                lead_id = busy_lead if i % 1000 == 0 else rng.choice(lead_ids)
                at = now - timedelta(minutes=rng.randrange(365 * 24 * 60))
                rows.append(
                    {
                        "clinic_id": clinic_id,
                        "lead_id": lead_id,
                        "type": "PHONE_CALL",
                        "direction": "OUTBOUND",
                        "outcome": "no_answer",
                        "occurred_at": at,
                        "created_at": at,
                        "actor": "bench",
                    }
                )
            conn.execute(sa.insert(LeadActivity), rows)
        activities_seconds = time.perf_counter() - started
        conn.execute(sa.text("ANALYZE"))  # fresh statistics, as autovacuum would give a live database
    return {
        "clinic_id": clinic_id,
        "admin_id": admin_id,
        "coordinator_ids": coordinator_ids,
        "busy_lead": busy_lead,
        "quiet_lead": lead_ids[1],
        "load": [["leads", n_leads, leads_seconds], ["activities", n_activities, activities_seconds]],
    }


def _timed(client, method: str, url: str, headers: dict, json=None) -> tuple[list[float], object]:
    samples, resp = [], None
    for _ in range(REPEAT):
        started = time.perf_counter()
        resp = client.open(url, method=method, headers=headers, json=json)
        samples.append((time.perf_counter() - started) * 1000)
        assert resp.status_code < 300, (url, resp.status_code, resp.get_json())
    return samples, resp


def _plan(app, sql: str, params: dict) -> list[str]:
    engine = app.extensions["followup.db"].engine
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            rows = conn.execute(sa.text("EXPLAIN " + sql), params).scalars().all()
        else:
            rows = [r[-1] for r in conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql), params)]
    return rows


def main(flags: list[str]) -> None:
    n_leads = _flag(flags, "leads", 100_000)
    n_activities = _flag(flags, "activities", 1_000_000)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(Path(tmp)) as url,
        bench_redis(Path(tmp)) as redis,
    ):
        migrate.upgrade(url)
        settings = Settings(
            env="bench",
            database_url=url,
            redis_url=redis,
            secret_key="bench-secret-0123456789-abcdefghijklmn",
            phi_encryption_key="3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ=",
            rate_limit_per_minute=0,  # one caller measuring reads, not the rate limit
        )
        app = create_app(settings)
        seeded = _seed(app, n_leads, n_activities)
        print_table(
            f"Bulk load ({app.extensions['followup.db'].dialect})",
            ["rows", "count", "seconds"],
            seeded["load"],
        )

        token = tokens.issue(
            secret=settings.secret_key,
            grant=tokens.TokenGrant(
                user_id=seeded["admin_id"],
                clinic_id=seeded["clinic_id"],
                kind="access",
                lifetime=timedelta(hours=1),
            ),
            now=clock.now(),
        )
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        coordinator = seeded["coordinator_ids"][3]
        reads = [
            (
                "board: assigned_to + stage, newest 20",
                "GET",
                f"/api/leads?assigned_to={coordinator}&stage=pending_decision&page_size=20",
                None,
            ),
            (
                "board: assigned_to + stage, page 10",
                "GET",
                f"/api/leads?assigned_to={coordinator}&stage=pending_decision&page_size=20&page=10",
                None,
            ),
            ("stage only, newest 20", "GET", "/api/leads?stage=contacted&page_size=20", None),
            ("all leads, newest 20", "GET", "/api/leads?page_size=20", None),
            (
                "created range (one month)",
                "GET",
                f"/api/leads?created_from={(datetime.now(UTC) - timedelta(days=60)).date()}"
                f"&created_to={(datetime.now(UTC) - timedelta(days=30)).date()}&page_size=20",
                None,
            ),
            ("q: phone digits", "GET", f"/api/leads?q={_phone(1234)[2:]}&page_size=20", None),
            ("q: a phone as typed, (415) 20", "GET", "/api/leads?q=(415) 20&page_size=20", None),
            ("q: three letters of a name, gar", "GET", "/api/leads?q=gar&page_size=20", None),
            ("q: a full name, maria garcia12", "GET", "/api/leads?q=maria garcia12&page_size=20", None),
            ("q: part of an email, lead98765@", "GET", "/api/leads?q=lead98765@&page_size=20", None),
            (
                "timeline, lead with 1,000 activities",
                "GET",
                f"/api/leads/{seeded['busy_lead']}/activities?page_size=20",
                None,
            ),
            (
                "timeline, typical lead",
                "GET",
                f"/api/leads/{seeded['quiet_lead']}/activities?page_size=20",
                None,
            ),
            ("GET one lead", "GET", f"/api/leads/{seeded['quiet_lead']}", None),
        ]
        rows = []
        for name, method, url_, body in reads:
            samples, resp = _timed(client, method, url_, headers, body)
            answer = resp.get_json()
            rows.append(
                [
                    name,
                    len(answer) if isinstance(answer, list) else 1,
                    median(samples),
                    percentile(samples, 95),
                    percentile(samples, 99),
                ]
            )
        created = []
        for i in range(REPEAT):
            started = time.perf_counter()
            resp = client.post(
                "/api/leads",
                json={"first_name": f"New{i}", "last_name": "Lead", "phone": _phone(i)},
                headers=headers,
            )
            created.append((time.perf_counter() - started) * 1000)
            assert resp.status_code == 201 and resp.get_json()["possible_duplicates"], resp.get_json()
        rows.append(
            [
                "POST lead (duplicate check, assign, events)",
                1,
                median(created),
                percentile(created, 95),
                percentile(created, 99),
            ]
        )
        print_table(
            f"API reads over {n_leads:,} leads / {n_activities:,} activities ({REPEAT} runs each)",
            ["request", "rows", "median ms", "p95 ms", "p99 ms"],
            rows,
        )

        board_sql = (
            "SELECT id FROM leads WHERE clinic_id = :c AND deleted_at IS NULL AND assigned_to_id = :u "
            "AND pipeline_stage = :s ORDER BY created_at DESC, id DESC LIMIT 20"
        )
        timeline_sql = (
            "SELECT id FROM lead_activities WHERE lead_id = :l ORDER BY occurred_at DESC, id DESC LIMIT 20"
        )
        print("\nPlan of the board query:")
        for line in _plan(
            app, board_sql, {"c": seeded["clinic_id"], "u": coordinator, "s": "pending_decision"}
        ):
            print("  " + line)
        print("Plan of the timeline query:")
        for line in _plan(app, timeline_sql, {"l": seeded["busy_lead"]}):
            print("  " + line)
        app.extensions["followup.db"].engine.dispose()
