"""Where the worker's time goes for a new lead: its `events.process` job, in-process, statement by statement.

`make bench BENCH_ARGS=automation_profile` (SQLite) or with DATABASE_URL=postgresql://... Flags:
--count=300 (leads measured, after 20 to warm up), --profile (print the top of a cProfile, by
cumulative time), --kind=events.process (or a kind the processing queues, run after it unmeasured:
--kind=intelligence.rescore), --drain=N (the backlog drained as a worker's delivery drains it, N
rows to a transaction; --drain=1: one by one). A kind due later (an SLA clock's warning or breach)
is made due at once, unmeasured: `--kind=sla.breach --drain=50` runs the breaches as a timers worker
does. Leads are captured through the service (`intake.create_lead`), then each lead's job is run by
`scheduling.runner.run_job` as the Celery task would run it. Prints the statements one job runs,
each with its mean execution time, the CPU per job of this process (SQLAlchemy, psycopg, the
handlers; Celery's own per-task overhead is not in it) and that of the database's backends.
"""

from __future__ import annotations

import cProfile
import dataclasses
import io
import pstats
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from app import create_app
from app.domains.auth.models import Clinic
from app.domains.intake import service as intake
from app.platform import clock, migrate
from app.platform.app_db import get_db
from app.platform.config import Settings
from app.platform.events.consumers import PROCESS_KIND
from app.platform.roles import Actor
from app.platform.scheduling import runner as scheduling
from app.platform.scheduling.models import ScheduledJob
from bench.common import bench_database, bench_redis, database_cpu, print_table
from bench.leads_profile import _first_words
from bench.leads_write import PHI_KEY, SECRET, _flag, _seed, lead_body

WARM_UP = 20


def _set_batch(app, kind: str, batch: int) -> None:
    """Run the kind's drain `batch` rows to a transaction in this process (1: one by one): the app's
    Database given an engine whose kind has that batch."""
    db = app.extensions["followup.db"]
    kinds = db.job_kinds.with_kind(dataclasses.replace(db.job_kinds.kind_of(kind), batch=batch))
    db.wiring = dataclasses.replace(db.wiring, job_kinds=kinds)


def _open_jobs(app, kind: str) -> list[int]:
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(ScheduledJob.id)
                .where(ScheduledJob.kind == kind, ScheduledJob.status.in_(("pending", "dispatched")))
                .order_by(ScheduledJob.id)
            )
        )


def _make_due(app, job_ids: list[int]) -> None:
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.id.in_(job_ids))
            .values(due_at=clock.now() - timedelta(seconds=1))
        )


def _capture(app, clinic_id: int, count: int, seed: int) -> list[int]:
    """Capture `count` leads; returns the ids of their processing jobs."""
    actor = Actor(clinic_id=clinic_id, permissions=frozenset({"lead:create"}), user_id=None, api_key_id=0)
    db = app.extensions["followup.db"]
    for n in range(count):
        with app.app_context(), db.unit_of_work() as session:
            data, now = lead_body(seed, n), clock.now()
            intake.create_lead(session=session, actor=actor, new=intake.NewLead(data=data), now=now)
    return _open_jobs(app, PROCESS_KIND)


def main(flags: list[str]) -> None:
    count = int(_flag(flags, "count", 300))
    kind = next((f.split("=", 1)[1] for f in flags if f.startswith("--kind=")), PROCESS_KIND)
    drain_batch = next((int(f.split("=", 1)[1]) for f in flags if f.startswith("--drain=")), None)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(Path(tmp)) as db_url,
        bench_redis(Path(tmp)) as redis_url,
    ):
        migrate.upgrade(db_url)
        _seed(db_url, redis_url)
        settings = Settings(
            database_url=db_url, redis_url=redis_url, secret_key=SECRET, phi_encryption_key=PHI_KEY
        )
        app = create_app(settings)
        with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
            clinic_id = session.scalar(sa.select(Clinic.id).order_by(Clinic.id).limit(1))
        warm = _capture(app, clinic_id, WARM_UP, 1)
        with app.app_context():
            for job_id in warm:
                scheduling.run_job(db=get_db(), job_id=job_id, now=clock.now())
        jobs = _capture(app, clinic_id, count, 2)
        if kind != PROCESS_KIND:  # the jobs of `kind` the leads' processing queued (unmeasured)
            with app.app_context():
                for job_id in jobs:
                    scheduling.run_job(db=get_db(), job_id=job_id, now=clock.now())
            jobs = _open_jobs(app, kind)
            _make_due(app, jobs)

        engine = app.extensions["followup.db"].engine
        executed: list[tuple[str, float, bool]] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _started(conn, cursor, statement, params, context, executemany):
            conn.info["bench.started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _finished(conn, cursor, statement, params, context, executemany):
            cached = context._get_cache_stats().startswith("cached")
            executed.append(
                (_first_words(statement), time.perf_counter() - conn.info.pop("bench.started"), cached)
            )

        profiler = cProfile.Profile(time.process_time) if "--profile" in flags else None  # CPU, not waits
        outcomes: dict[str, int] = defaultdict(int)
        with app.app_context():
            cpu, wall, in_database = time.process_time(), time.perf_counter(), database_cpu(db_url)
            if profiler:
                profiler.enable()
            if drain_batch is not None:  # the backlog drained as a worker's delivery drains it
                _set_batch(app, kind, drain_batch)
                outcomes["done"] += scheduling.drain(db=get_db(), kind=kind, clock=clock.now)
            else:
                for job_id in jobs:
                    outcomes[scheduling.run_job(db=get_db(), job_id=job_id, now=clock.now())] += 1
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            in_database = database_cpu(db_url) - in_database
        event.remove(engine, "before_cursor_execute", _started)
        event.remove(engine, "after_cursor_execute", _finished)

    per_kind: dict[str, list[float]] = defaultdict(list)
    hits: dict[str, int] = defaultdict(int)
    for words, seconds, cached in executed:
        per_kind[words].append(seconds)
        hits[words] += cached
    rows = [
        [words, len(times) / len(jobs), sum(times) / len(times) * 1000, f"{hits[words] / len(times):.0%}"]
        for words, times in sorted(per_kind.items(), key=lambda item: -len(item[1]))
    ]
    print_table(
        f"Statements of one new lead's {kind} job ({len(jobs)} jobs, outcomes {dict(outcomes)})",
        ["statement", "per job", "mean ms", "compiled form cached"],
        rows,
    )
    print(
        f"\n  {len(executed) / len(jobs):.1f} statements per job; "
        f"per job: CPU {cpu / len(jobs) * 1000:.2f} ms, "
        f"wall {wall / len(jobs) * 1000:.2f} ms (this process, profiler {'on' if profiler else 'off'}); "
        f"CPU of the database's backends {in_database / len(jobs) * 1000:.2f} ms"
    )
    if profiler:
        out = io.StringIO()
        profiler.dump_stats(Path(tempfile.gettempdir()) / "automation_profile.prof")
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(60)
        print(out.getvalue())
