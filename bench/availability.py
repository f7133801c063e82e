"""Free slots at scale: `GET /api/availability` for a 14-day window of a type taken by 10 providers,
with 5,000 booked consultations on the clinic's books (issue 62's target: p99 <= 100 ms on PostgreSQL).

`make bench BENCH_ARGS=availability` (SQLite file) or with DATABASE_URL=postgresql://... (a fresh
database). Options: `--consultations=5000 --providers=10 --repeat=100`. The consultations are
bulk-loaded into the providers' weekday hours from tomorrow on (about 60% of each provider's
half-hour starts taken, so the window is busy and the rest stretch months ahead), a tenth of them
cancelled; each provider also has calendar busy blocks. Timed through the app (test client).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.auth import service as auth
from app.domains.auth import tokens
from app.domains.auth.models import User
from app.domains.availability import service as availability
from app.domains.availability.models import BusyBlock
from app.domains.consultations.models import Consultation
from app.domains.leads.models import Lead, LeadSource
from app.platform import clock
from bench.common import bench_app, median, percentile, print_table

SECRET = "bench-secret-0123456789-abcdefghijklmn"
PHI_KEY = "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ="
ZONE = "America/New_York"
HOURS = {day: [["08:00", "12:00"], ["13:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
VISIT = timedelta(minutes=30)
WINDOW_DAYS = 14
TARGET_P99_MS = 100


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return int(flag.split("=", 1)[1].replace("_", ""))
    return default


def _clinic(app, n_providers: int):
    db, now = app.extensions["followup.db"], clock.now()
    with app.app_context(), db.unit_of_work() as session:
        clinic = auth.create_clinic(
            session=session, hooks=session.database.wiring.auth, name="Bench Ortho", now=now
        )
        clinic.timezone = ZONE
        admin = User(
            clinic_id=clinic.id, email="admin@example.com", name="Admin", role="clinic_admin",
            password_hash="-", active=True, out_of_office=False, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(admin)
        session.flush()
        availability.update_settings(
            session=session,
            clinic_id=clinic.id,
            changes={
                "buffer_minutes": 10,
                "min_notice_minutes": 60,
                "horizon_days": 365,
                "slot_step_minutes": 15,
            },
            now=now,
        )
        providers = [
            availability.create_provider(
                session=session,
                clinic_id=clinic.id,
                fields={"name": f"Dr. {i}", "kind": "provider", "hours": HOURS},
                now=now,
            ).id
            for i in range(n_providers)
        ]
        kind = availability.create_type(
            session=session,
            clinic_id=clinic.id,
            fields={
                "name": "Consultation",
                "duration_minutes": 30,
                "mode": "in_person",
                "provider_ids": providers,
            },
            now=now,
        )
        session.commit()
        return clinic.id, admin.id, providers, kind.id


def _starts(rng: random.Random, count: int):
    """`count` half-hour starts in weekday hours from tomorrow on, about 60% of them taken."""
    zone, day = ZoneInfo(ZONE), clock.now().astimezone(ZoneInfo(ZONE)).date() + timedelta(days=1)
    found = []
    while len(found) < count:
        if day.weekday() < 5:
            for hour in (8, 9, 10, 11, 13, 14, 15, 16):
                for minute in (0, 30):
                    if rng.random() < 0.6 and len(found) < count:
                        found.append(
                            datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)
                        )
        day += timedelta(days=1)
    return found


def _seed(app, clinic_id: int, providers: list[int], kind_id: int, n_consultations: int) -> None:
    db, now, rng = app.extensions["followup.db"], clock.now(), random.Random(62)
    with db.engine.begin() as conn:
        source_id = conn.scalar(sa.select(LeadSource.id).where(LeadSource.clinic_id == clinic_id).limit(1))
        lead = {
            "clinic_id": clinic_id, "status": "ACTIVE", "pipeline_stage": "consultation_scheduled",
            "stage_entered_at": now, "first_name": "F", "last_name": "L", "preferred_contact": "PHONE",
            "patient_relationship": "SELF", "treatment_interest": [], "created_at": now, "updated_at": now,
            "created_by": "bench", "updated_by": "bench", "source_id": source_id,
        }  # fmt: skip
        conn.execute(sa.insert(Lead), [lead] * n_consultations)
        lead_ids = list(conn.scalars(sa.select(Lead.id).where(Lead.clinic_id == clinic_id).order_by(Lead.id)))
        per_provider = -(-n_consultations // len(providers))
        rows, blocks = [], []
        for provider_id in providers:
            for start in _starts(rng, per_provider):
                if len(rows) == n_consultations:
                    break
                status = "cancelled" if rng.random() < 0.1 else "scheduled"
                rows.append(
                    {
                        "clinic_id": clinic_id, "lead_id": lead_ids[len(rows)], "status": status,
                        "starts_at": start, "duration_minutes": 30, "provider_id": provider_id,
                        "type_id": kind_id,
                        "ends_at": start + VISIT, "blocked_until": start + VISIT, "overlap_allowed": False,
                        "version": 1, "created_by": "bench", "created_at": now, "updated_at": now,
                    }
                )  # fmt: skip
            for offset in range(0, 60, 3):  # a calendar event every third day, lunchtime-ish
                begins = now.replace(hour=17, minute=0, second=0, microsecond=0) + timedelta(days=offset)
                blocks.append(
                    {"provider_id": provider_id, "starts_at": begins, "ends_at": begins + timedelta(hours=1)}
                )
        conn.execute(sa.insert(Consultation), rows)
        conn.execute(sa.insert(BusyBlock), blocks)
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))


def main(flags: list[str]) -> None:
    n_consultations = _flag(flags, "consultations", 5000)
    n_providers = _flag(flags, "providers", 10)
    repeat = _flag(flags, "repeat", 100)
    with bench_app(secret_key=SECRET, phi_encryption_key=PHI_KEY) as app:
        dialect = app.extensions["followup.db"].dialect
        clinic_id, admin_id, providers, kind_id = _clinic(app, n_providers)
        started = time.perf_counter()
        _seed(app, clinic_id, providers, kind_id, n_consultations)
        load_seconds = time.perf_counter() - started
        token = tokens.issue(
            secret=SECRET,
            grant=tokens.TokenGrant(
                user_id=admin_id, clinic_id=clinic_id, kind="access", lifetime=timedelta(hours=2)
            ),
            now=clock.now(),
        )
        client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
        first = clock.now().astimezone(ZoneInfo(ZONE)).date() + timedelta(days=1)
        rows = []
        for label, provider in (("any of the type's providers", None), ("one provider", providers[0])):
            query = {
                "type": kind_id,
                "from": first.isoformat(),
                "to": (first + timedelta(days=WINDOW_DAYS - 1)).isoformat(),
            }
            if provider is not None:
                query["provider"] = provider
            times, offered = [], 0
            for i in range(repeat + 1):
                t0 = time.perf_counter()
                resp = client.get("/api/availability", query_string=query, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                assert resp.status_code == 200, resp.get_json()
                offered = len(resp.get_json())
                if i:  # the first call warms caches
                    times.append(elapsed)
            rows.append([label, offered, median(times), percentile(times, 99), f"<= {TARGET_P99_MS}"])
        print_table(
            f"GET /api/availability, {WINDOW_DAYS} days ({dialect}: {n_providers} providers, "
            f"{n_consultations:,} consultations loaded in {load_seconds:.1f}s; "
            f"ms, {repeat} runs after a warm-up)",
            ["providers asked", "slots offered", "p50", "p99", "target p99"],
            rows,
        )
