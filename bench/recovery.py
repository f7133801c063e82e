"""Recovery: the whole Procfile stack under a steady capture rate while a dependency goes away.

Faults, one after the other on the same running stack:
- redis: the Redis (broker, wakeups, rate limits) stopped, and started again EMPTY on the same port
  5 s later (a managed Redis failing over);
- database: every backend of the bench's database ended (pg_terminate_backend), PostgreSQL only.

For each: seconds from the fault until every lead captured before, during and after it has its
initial call task; speed to lead (capture's commit → call task) p99 in the minute after; the answers
by status; whether every Procfile process is still running.

    make bench BENCH_ARGS="recovery --rate=20 --seconds=60 --faults=redis,database"
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from app import create_app
from app.devtools.local_redis import LocalRedis, free_port
from app.domains.leads.models import Lead
from app.domains.tasks.models import LeadTask
from app.platform import clock
from bench.automation import (
    DRAIN_TIMEOUT,
    _collect_paced,
    _max_lead_id,
    _settings,
    _smtp_sink,
    _start_paced,
    _worker_types,
)
from bench.bulk import _wait
from bench.common import bench_database, percentile, print_table
from bench.leads_write import _flag, _seed, server_env
from bench.stack import procfile_processes, procfile_stack, release, stack_env

FAULTS = ("redis", "database")
REDIS_DOWN_SECONDS = 5.0
AFTER_WINDOW = 60.0  # the speed to lead "in the minute after" the fault ended


def main(flags: list[str]) -> None:
    rate = _flag(flags, "rate", 20.0)
    seconds = _flag(flags, "seconds", 60.0)
    clients = int(_flag(flags, "clients", 4))
    faults = next((f.split("=", 1)[1].split(",") for f in flags if f.startswith("--faults=")), list(FAULTS))
    if os.environ.get("REDIS_URL"):
        raise SystemExit("recovery restarts its Redis: leave REDIS_URL unset so it starts one of its own")
    rows, run = recovery(rate=rate, seconds=seconds, clients=clients, faults=faults)
    print_table(
        f"Recovery on the whole Procfile stack ({', '.join(run['processes'])}; {run['dialect']}): "
        f"{rate:g} leads/s for {seconds:g} s a fault, the fault at a third of the way",
        [
            "fault",
            "outage s",
            "all tasks made, s after the fault: before / during / after",
            "leads before / during / after",
            "without a task",
            f"p99 ms in the {AFTER_WINDOW:g} s after",
            "answers by status",
            "processes alive",
        ],
        rows,
    )


def recovery(*, rate: float, seconds: float, clients: int, faults: list[str]):
    with tempfile.TemporaryDirectory() as tmp, bench_database(Path(tmp)) as db_url, _smtp_sink() as smtp_port:
        workdir = Path(tmp)
        redis = LocalRedis(workdir / "redis").start()
        try:
            port = free_port()
            env = stack_env(
                {
                    **server_env(db_url, redis.url),
                    "EMAIL_BACKEND": "smtp",
                    "SMTP_HOST": "127.0.0.1",
                    "SMTP_PORT": str(smtp_port),
                    "FOLLOWUP_VAR_DIR": tmp,
                },
                workdir,
                port,
            )
            logs = workdir / "logs"
            logs.mkdir()
            release(env, logs)
            token = _seed(db_url, redis.url)
            app = create_app(_settings(db_url, redis.url))
            names = [n for n in procfile_processes() if n not in ("release", "flower")]
            names.sort(key=lambda n: n != "web")
            engine = sa.create_engine(db_url)
            rows = []
            try:
                with procfile_stack(names, env, logs) as stack:
                    for fault in faults:
                        if fault == "database" and engine.dialect.name != "postgresql":
                            continue
                        _wait_workers(app, _worker_types(names))
                        rows.append(_one(fault, engine, stack, redis, token, rate, seconds, clients))
                        print(f"  {fault}: {rows[-1]}", flush=True)
            except Exception:
                for path in sorted(logs.glob("*.log")):
                    print(f"\n  {path.name}, last lines:\n{path.read_text()[-3000:]}")
                raise
            finally:
                engine.dispose()
        finally:
            redis.stop()
        run = {"dialect": "PostgreSQL" if db_url.startswith("postgresql") else "SQLite", "processes": names}
    return rows, run


def _one(fault, engine, stack, redis, token, rate, seconds, clients) -> list:
    before = _max_lead_id(engine)
    seed = {"redis": 700, "database": 800}[fault]
    paced = _start_paced(stack.port, token, rate, seconds, clients, seed=seed)
    time.sleep(seconds / 3)
    fault_at = time.time()
    if fault == "redis":
        redis.stop()
        time.sleep(REDIS_DOWN_SECONDS)
        redis.start()
    else:
        _drop_database_connections(engine)
    fault_end = time.time()
    statuses, _, _ = _collect_paced(paced)
    upto = _max_lead_id(engine)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while _without_task(engine, before, upto) and time.monotonic() < deadline:
        time.sleep(0.5)
    alive = sum(1 for popen in stack.started.values() if popen.poll() is None)
    leads = _leads(engine, before, upto)
    periods = {"before": [], "during": [], "after": []}
    for captured, task_at in leads:
        period = "before" if captured < fault_at else "during" if captured < fault_end else "after"
        periods[period].append((captured, task_at))
    made_by = [
        max((t - fault_at for _, t in periods[p] if t is not None), default=float("nan")) for p in periods
    ]
    after = [t - c for c, t in leads if t is not None and fault_end <= c < fault_end + AFTER_WINDOW]
    return [
        fault,
        round(fault_end - fault_at, 1),
        " / ".join(f"{s:.1f}" for s in made_by),
        " / ".join(str(len(v)) for v in periods.values()),
        sum(1 for _, t in leads if t is None),
        round(percentile(after, 99) * 1000) if after else "none with a task",
        ", ".join(f"{code or 'no answer'}: {n}" for code, n in sorted(statuses.items())),
        f"{alive} of {len(stack.started)}",
    ]


def _wait_workers(app, count: int) -> None:
    """Until every Procfile worker answers a ping, each on a new connection: this process's pooled
    one may be one the restarted Redis dropped."""
    sender = app.extensions["followup.dispatcher"].celery

    def answered() -> bool:
        try:
            with sender.connection_for_write() as connection:
                return len(sender.control.ping(timeout=1.0, connection=connection) or []) >= count
        except Exception:
            return False

    _wait(answered, 90, "the Procfile's workers", 0.2)


def _drop_database_connections(engine) -> None:
    with engine.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        conn.commit()


def _without_task(engine, after: int, upto: int) -> int:
    return sum(1 for _, task_at in _leads(engine, after, upto) if task_at is None)


def _leads(engine, after: int, upto: int) -> list[tuple[float, float | None]]:
    """(captured at, first call task at) as epoch seconds, per lead captured in (after, upto]."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Lead.created_at, sa.func.min(LeadTask.created_at))
            .outerjoin(LeadTask, LeadTask.lead_id == Lead.id)
            .where(Lead.id > after, Lead.id <= upto)
            .group_by(Lead.id, Lead.created_at)
        ).all()
    as_epoch = lambda at: clock.as_utc(at).timestamp() if at is not None else None  # noqa: E731
    return [(as_epoch(c), as_epoch(t)) for c, t in rows]
