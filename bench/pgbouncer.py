"""Speed to lead behind PgBouncer (transaction pooling) against PostgreSQL direct, in one run (issue 44).

    DATABASE_URL=postgresql://... make bench BENCH_ARGS="pgbouncer --rate=20 --seconds=30"

Flags: --rate=20 (leads/s), --seconds=30 (measured, a setup), --warm-up=10 (seconds of the same
load first, unmeasured, then ANALYZE), --clients=4 (paced senders), --pool-size=10 (PgBouncer's
server sessions for the database: fewer than the processes' clients, as in production).

Each setup gets the same: a fresh database migrated by the Procfile's release, the whole Procfile
stack (all but release and flower) on it, the warm-up, then the measured load; only the path to the
database differs:
- direct: every process to PostgreSQL itself;
- pgbouncer: every process through a private `pgbouncer` (Debian's package, tests/pgbouncer.py) in
  pool_mode=transaction, with FOLLOWUP_DATABASE_POOLER=transaction; the release migrates through
  FOLLOWUP_MIGRATIONS_DATABASE_URL, PostgreSQL itself (docs/operations/pgbouncer.md).
Speed to lead is capture's commit → the initial call task's commit (bench/automation).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from app import create_app
from app.devtools.local_redis import free_port
from bench.automation import Phase, _make_warm, _phase, _settings, _tail, _wait_workers, _worker_types
from bench.common import bench_database, bench_redis, percentile, print_table
from bench.leads_write import _flag, _seed, server_env
from bench.stack import procfile_processes, procfile_stack, release, stack_env
from tests.pgbouncer import PgBouncer, pgbouncer_binary

SETUPS = ("direct", "pgbouncer")


@contextmanager
def _path_to(setup: str, direct_url: str, workdir: Path, pool_size: int):
    """The database settings of the setup's processes."""
    if setup == "direct":
        yield {"DATABASE_URL": direct_url}
        return
    directory = workdir / "pgbouncer"
    directory.mkdir()
    with PgBouncer(pgbouncer_binary(), directory, direct_url, pool_size) as pooler:
        yield {
            "DATABASE_URL": pooler.url,
            "FOLLOWUP_DATABASE_POOLER": "transaction",
            "FOLLOWUP_MIGRATIONS_DATABASE_URL": direct_url,
        }


def run_setup(setup: str, *, rate: float, seconds: float, warm_up: float, clients: int, pool_size: int):
    """One setup, from a fresh database to the measured phase; returns it."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(Path(tmp)) as direct_url,
        bench_redis(Path(tmp)) as redis_url,
        _path_to(setup, direct_url, Path(tmp), pool_size) as database,
    ):
        workdir = Path(tmp)
        logs = workdir / "logs"
        logs.mkdir()
        env = stack_env(
            {**server_env(direct_url, redis_url), **database, "FOLLOWUP_VAR_DIR": tmp}, workdir, free_port()
        )
        release(env, logs)
        token = _seed(direct_url, redis_url)
        app = create_app(_settings(direct_url, redis_url))
        names = sorted(
            (n for n in procfile_processes() if n not in ("release", "flower")), key=lambda n: n != "web"
        )
        engine = sa.create_engine(direct_url)  # the bench's own reads, beside the measured path
        try:
            with procfile_stack(names, env, logs, ready_timeout=300) as stack:  # a busy host boots slowly
                _wait_workers(app, _worker_types(names))
                _make_warm(engine, stack.port, token, rate, warm_up, clients, measured_before=False)
                phase = _phase("warm", engine, stack, app, token, rate, seconds, clients, 0)
        except Exception:
            for path in sorted(logs.glob("*.log")):
                print(f"\n  {setup}: {path.name}, last lines:\n{_tail(path)}")
            raise
        finally:
            engine.dispose()
            app.extensions["followup.db"].engine.dispose()
    phase.mode = setup
    return phase


def rows(phases: list[Phase]) -> list[list]:
    table = []
    for phase in phases:
        task = phase.latencies["task"]
        late = sorted(phase.lags)
        table.append(
            [
                phase.mode,
                phase.captured,
                len(task),
                *(percentile(task, p) * 1000 for p in (50, 95, 99)),
                max(task, default=0) * 1000,
                ", ".join(f"{code}: {n}" for code, n in sorted(phase.statuses.items())),
                percentile(late, 99) * 1000 if late else 0.0,
            ]
        )
    return table


def main(flags: list[str]) -> None:
    rate, seconds = _flag(flags, "rate", 20), _flag(flags, "seconds", 30)
    warm_up, clients = _flag(flags, "warm-up", 10), int(_flag(flags, "clients", 4))
    pool_size = int(_flag(flags, "pool-size", 10))
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("  skipped: PgBouncer sits in front of PostgreSQL (set DATABASE_URL=postgresql://...)")
        return
    if pgbouncer_binary() is None:
        print("  skipped: needs PgBouncer (Debian package `pgbouncer`)")
        return
    phases = [
        run_setup(setup, rate=rate, seconds=seconds, warm_up=warm_up, clients=clients, pool_size=pool_size)
        for setup in SETUPS
    ]
    print_table(
        f"Speed to lead (capture's commit → the initial call task) at {rate:g} leads/s for {seconds:g} s, "
        f"the whole Procfile stack on PostgreSQL direct and through PgBouncer (pool_mode=transaction, "
        f"{pool_size} server sessions), each after {warm_up:g} s of warm-up and an ANALYZE",
        [
            "setup",
            "captured",
            "with task",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "answers",
            "sender lag p99 ms",
        ],
        rows(phases),
    )
