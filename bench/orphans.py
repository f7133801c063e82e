"""The orphan sweep and the stale sweep at 100,000 and 1,000,000 leads (PostgreSQL): ms per run.

`make bench BENCH_ARGS=orphans` with DATABASE_URL=postgresql://... (a fresh database per size).
Options: `--sizes=100000,1000000`, `--runs=10`. Target: each sweep <= 200 ms per run, flat in
table size (what a run costs follows what it finds, not how many leads there are). The orphan
sweep walks `orphan_slice_size` leads a run and plans at most `orphan_tasks_per_run` follow-ups
(steps on the ledger; the worker that makes their tasks is not timed here).

The data, set-based (generate_series), the same mix at every size: 60% of leads closed (converted
or lost); open leads each have an open task, except one lead in 2,000, an orphan whose last task
was completed 3 days ago (so each slice of the walk finds about as many). Staleness: open leads
mostly active yesterday; one in 1,000 quiet for 20 days and already flagged, and pending-decision
stays over the 7-day limit already flagged; 100 leads newly quiet and 100 stays newly over the
limit, whatever the size, so the first stale run has the same work to do at both sizes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from app import create_app
from app.domains.auth import service as auth
from app.domains.auth.models import Clinic, User
from app.domains.automation import orphans
from app.domains.leads.models import LeadSource
from app.domains.pipeline import staleness
from app.platform import clock, migrate
from app.platform.config import Settings
from bench.common import bench_database, bench_redis, median, print_table

SECRET = "bench-secret-0123456789-abcdefghijklmn"
TARGET_MS = 200
NEW_STALE = 100  # newly stale leads in each sense, at every size

_LEADS = sa.text(
    """
    INSERT INTO leads (clinic_id, status, pipeline_stage, stage_entered_at, first_name, last_name,
        preferred_contact, patient_relationship, source_id, treatment_interest, assigned_to_id,
        created_at, updated_at, created_by, updated_by, last_activity_at, quiet_flagged_at,
        stage_stale_at)
    SELECT :clinic_id,
        CASE WHEN g % 10 < 6 THEN (CASE WHEN g % 2 = 0 THEN 'CONVERTED' ELSE 'LOST' END) ELSE 'ACTIVE' END,
        CASE WHEN g % 10 < 6 THEN (CASE WHEN g % 2 = 0 THEN 'treatment_started' ELSE 'lost' END)
             WHEN g % 10 = 6 THEN 'pending_decision' ELSE 'contacted' END,
        :now - interval '30 days', 'F', 'L', 'PHONE', 'SELF', :source_id, '[]',
        :first_user + (g % :users),
        :now - interval '60 days', :now - interval '1 day', 'bench', 'bench',
        CASE WHEN g % 1000 = 7 OR (g % 10 = 9 AND g <= :new_stale * 10) THEN :now - interval '20 days'
             ELSE :now - interval '1 day' END,
        CASE WHEN g % 1000 = 7 THEN :now - interval '10 days' END,
        CASE WHEN g % 10 = 6 AND g > :new_stale * 10 THEN :now - interval '20 days' END
    FROM generate_series(1, :n) AS g
    """
)
# One open task per open lead, but for the orphans (one in 2,000), whose last task was completed.
_TASKS = sa.text(
    """
    INSERT INTO lead_tasks (clinic_id, lead_id, title, type, priority, assigned_to_id, due_at, status,
        origin, revision, created_at, updated_at, completed_at)
    SELECT clinic_id, id, 'Call', 'CALL', 'NORMAL', assigned_to_id,
        CASE WHEN id % 2000 = 8 THEN :now - interval '3 days' ELSE :now + interval '1 day' END,
        CASE WHEN id % 2000 = 8 THEN 'COMPLETED' ELSE 'PENDING' END,
        '{}', 1, :now - interval '10 days',
        CASE WHEN id % 2000 = 8 THEN :now - interval '3 days' ELSE :now - interval '10 days' END,
        CASE WHEN id % 2000 = 8 THEN :now - interval '3 days' END
    FROM leads WHERE status = 'ACTIVE'
    """
)


def _flag(flags: list[str], name: str, default: str) -> str:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return flag.split("=", 1)[1]
    return default


def _seed(app, n: int) -> float:
    db, now = app.extensions["followup.db"], clock.now()
    with app.app_context(), db.unit_of_work() as session:
        clinic = auth.create_clinic(
            session=session, hooks=session.database.wiring.auth, name="Bench Ortho", now=now
        )
        users = [
            User(
                clinic_id=clinic.id,
                email=f"b{i}@example.com",
                name=f"B{i}",
                role="treatment_coordinator",
                password_hash="-",
                active=True,
                out_of_office=False,
                created_at=now,
                updated_at=now,
            )
            for i in range(10)
        ]
        session.add_all(users)
        session.flush()
        source_id = session.scalar(sa.select(LeadSource.id).where(LeadSource.clinic_id == clinic.id))
        params = {"clinic_id": clinic.id, "source_id": source_id, "first_user": users[0].id, "users": 10}
    started = time.perf_counter()
    with db.engine.begin() as conn:  # lead ids are 1..n in a fresh database: the task mix follows them
        conn.execute(_LEADS, {**params, "now": now, "n": n, "new_stale": NEW_STALE})
        conn.execute(_TASKS, {"now": now})
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def _timed(app, run) -> tuple[float, object]:
    db = app.extensions["followup.db"]
    with app.app_context():
        started = time.perf_counter()
        with db.unit_of_work() as session:
            result = run(session)
        return (time.perf_counter() - started) * 1000, result


def _orphan_pass(app, runs: int, settings, now) -> tuple[list[float], int, int]:
    """Up to `runs` runs of the walk (fewer if the pass ends): ms each, orphans found, follow-ups planned."""
    times, found, made = [], 0, 0
    for _ in range(runs):
        ms, result = _timed(
            app,
            lambda s: orphans.find_orphan_leads(
                session=s,
                now=now,
                slice_size=settings.orphan_slice_size,
                max_follow_ups=settings.orphan_tasks_per_run,
            ),
        )
        times.append(ms)
        found, made = found + result["orphans"], made + result["follow_ups"]
        if result["pass_ended"]:
            break
    return times, found, made


def _orphan_after(app, hours: float) -> None:
    with app.extensions["followup.db"].engine.begin() as conn:
        conn.execute(sa.update(Clinic).values(settings={"orphan_after_hours": hours}))


def _measure(app, runs: int, settings) -> list[tuple]:
    """(sweep, runs' ms, what they did) for: the walk finding orphans too young for a task; the
    walk making their tasks; the stale sweep flagging the new finds; the stale sweep with none."""
    now = clock.now()
    _orphan_after(app, 24 * 7)  # the seeded orphans are 3 days old: found and counted, no task yet
    checked, found, _ = _orphan_pass(app, runs, settings, now)
    _orphan_after(app, 24)
    making, found_again, made = _orphan_pass(app, runs, settings, now)
    first_ms, flagged = _timed(app, lambda s: staleness.find_stale_leads(session=s, now=now))
    steady = [_timed(app, lambda s: staleness.find_stale_leads(session=s, now=now))[0] for _ in range(runs)]
    return [
        ("orphan sweep (finds only)", checked, f"{found} orphans found"),
        ("orphan sweep (plans follow-ups)", making, f"{found_again} found, {made} planned"),
        ("stale sweep (finds)", [first_ms], f"{flagged} flagged"),
        ("stale sweep (steady)", steady, "0 flagged"),
    ]


def main(flags: list[str]) -> None:
    sizes = [int(s.replace("_", "")) for s in _flag(flags, "sizes", "100000,1000000").split(",")]
    runs = int(_flag(flags, "runs", "10"))
    rows, seeds = [], []
    for n in sizes:
        with (
            tempfile.TemporaryDirectory() as tmp,
            bench_database(Path(tmp)) as url,
            bench_redis(Path(tmp)) as redis_url,
        ):
            if not url.startswith("postgresql"):
                print(
                    "bench/orphans needs DATABASE_URL=postgresql://... (it bulk-loads with generate_series)"
                )
                return
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
            seeds.append([n, _seed(app, n)])
            app.extensions["followup.dispatcher"].check_broker()  # as a running beat worker: connected
            for sweep, times, work in _measure(app, runs, settings):
                rows.append([f"{n:,}", sweep, len(times), median(times), max(times), work])
    print_table("Bulk load (PostgreSQL, generate_series + VACUUM ANALYZE)", ["leads", "seconds"], seeds)
    print_table(
        f"Sweeps per run (ms; target <= {TARGET_MS} ms, flat in table size; a shared, noisy 2-core machine)",
        ["leads", "sweep", "runs", "p50 ms", "max ms", "work"],
        rows,
    )
