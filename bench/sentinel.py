"""Recovery after a Sentinel failover: the whole Procfile stack on a Redis reached through Sentinel
(app/devtools/local_sentinel.py: a master, a replica, three Sentinels, quorum 2,
down-after-milliseconds 1000) under a steady capture rate; a third of the way in, the master is
killed -9 and the Sentinels promote the replica.

Measured: seconds from the kill until the Sentinels name the new master; seconds from the kill
until every lead captured before, during (kill → promotion) and after it has its initial call task;
the leads of each period; the answers by status; whether every Procfile process is still running.

    make bench BENCH_ARGS="sentinel --rate=20 --seconds=30"
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from app import create_app
from app.devtools.local_redis import free_port
from app.devtools.local_sentinel import LocalSentinels
from bench.automation import (
    DRAIN_TIMEOUT,
    _collect_paced,
    _max_lead_id,
    _settings,
    _smtp_sink,
    _start_paced,
    _worker_types,
)
from bench.common import bench_database, print_table
from bench.leads_write import _flag, _seed, server_env
from bench.recovery import _leads, _wait_workers, _without_task
from bench.stack import procfile_processes, procfile_stack, release, stack_env

PERIODS = ("before", "during", "after")


def main(flags: list[str]) -> None:
    rate = _flag(flags, "rate", 20.0)
    seconds = _flag(flags, "seconds", 30.0)
    clients = int(_flag(flags, "clients", 4))
    row, run = failover(rate=rate, seconds=seconds, clients=clients)
    print_table(
        f"Recovery after a Sentinel failover on the whole Procfile stack ({', '.join(run['processes'])}; "
        f"{run['dialect']}): {rate:g} leads/s for {seconds:g} s, the master killed -9 at a third of the way",
        [
            "failover s (kill → new master named)",
            "all tasks made, s after the kill: before / during / after",
            "leads before / during / after",
            "without a task",
            "answers by status",
            "processes alive",
        ],
        [row],
    )


def failover(*, rate: float, seconds: float, clients: int):
    with tempfile.TemporaryDirectory() as tmp, bench_database(Path(tmp)) as db_url, _smtp_sink() as smtp_port:
        workdir = Path(tmp)
        with LocalSentinels(workdir / "sentinel") as cluster:
            port = free_port()
            sentinel_env = {"FOLLOWUP_REDIS_SENTINEL_MASTER": cluster.master_name}
            env = stack_env(
                {
                    **server_env(db_url, cluster.url),
                    **sentinel_env,
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
            token = _seed(
                db_url, cluster.master.url
            )  # the seed writes no Redis key: the master itself will do
            settings = _settings(db_url, cluster.url)
            settings.redis_sentinel_master = cluster.master_name
            app = create_app(settings)
            names = [n for n in procfile_processes() if n not in ("release", "flower")]
            names.sort(key=lambda n: n != "web")
            engine = sa.create_engine(db_url)
            try:
                with procfile_stack(
                    names, env, logs, ready_timeout=180.0
                ) as stack:  # a busy host boots slowly
                    _wait_workers(app, _worker_types(names))
                    row = _one(engine, stack, cluster, token, rate, seconds, clients)
            except Exception:
                for path in sorted(logs.glob("*.log")):
                    print(f"\n  {path.name}, last lines:\n{path.read_text()[-3000:]}")
                raise
            finally:
                engine.dispose()
        run = {"dialect": "PostgreSQL" if db_url.startswith("postgresql") else "SQLite", "processes": names}
    return row, run


def _one(
    engine, stack, cluster: LocalSentinels, token: str, rate: float, seconds: float, clients: int
) -> list:
    before = _max_lead_id(engine)
    paced = _start_paced(stack.port, token, rate, seconds, clients, seed=900)
    time.sleep(seconds / 3)
    kill_at = time.time()
    cluster.wait_for_failover(cluster.kill_master())
    promoted_at = time.time()
    statuses, _, _ = _collect_paced(paced)
    upto = _max_lead_id(engine)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while _without_task(engine, before, upto) and time.monotonic() < deadline:
        time.sleep(0.5)
    alive = sum(1 for popen in stack.started.values() if popen.poll() is None)
    leads = _leads(engine, before, upto)
    periods = {period: [] for period in PERIODS}
    for captured, task_at in leads:
        period = "before" if captured < kill_at else "during" if captured < promoted_at else "after"
        periods[period].append((captured, task_at))
    made_by = [
        max((t - kill_at for _, t in periods[p] if t is not None), default=float("nan")) for p in PERIODS
    ]
    return [
        round(promoted_at - kill_at, 1),
        " / ".join(f"{s:.1f}" for s in made_by),
        " / ".join(str(len(periods[p])) for p in PERIODS),
        sum(1 for _, t in leads if t is None),
        ", ".join(f"{code or 'no answer'}: {n}" for code, n in sorted(statuses.items())),
        f"{alive} of {len(stack.started)}",
    ]
