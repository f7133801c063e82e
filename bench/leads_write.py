"""Lead capture throughput: POST /api/leads through gunicorn (2 workers) vs a raw one-INSERT app.

Four phases on one database, the same gunicorn settings for each: capture and the raw ceiling
(`bench/raw_app.py`: Flask + psycopg, one autocommit INSERT) with kept-alive clients, as frontends
and proxies keep their connections (issue 20's comparison, target capture/raw >= 0.25); then capture
and the older bare ceiling (`bench/bare_app.py`: SQLAlchemy BEGIN/INSERT/COMMIT) with a new TCP
connection per request.

`make bench BENCH_ARGS=leads_write` (SQLite) or with DATABASE_URL=postgresql://... Flags:
--seconds=30 (per phase), --clients=8 (concurrent closed-loop client processes),
--threads=4 (gthread worker with N threads per process, as the Procfile's WEB_THREADS; 0: the sync
worker), --workers=2 (processes, as the Procfile's WEB_CONCURRENCY), the same for every phase,
--warm-up=5 (seconds of capture load before the measured ones, then ANALYZE: see `_warm_up`).
Target (issue 3): ≥ 500 leads/s with p99 ≤ 50 ms on PostgreSQL on 2 cores.
Where a capture's time goes, statement by statement: `bench leads_profile`.
"""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from app import create_app
from app.devtools.local_redis import free_port
from app.domains.auth import tokens
from app.domains.auth.models import User
from app.domains.auth.service import create_clinic, hash_password
from app.platform import clock, migrate
from app.platform.config import Settings
from app.platform.db import make_engine
from app.platform.roles import Role
from bench import bare_app, raw_app
from bench.common import bench_database, bench_redis, database_cpu, print_table, process_tree_cpu
from bench.host import host_probe, shown, typical
from bench.http_load import WEB_THREADS, gunicorn, run_load

SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"
TARGET_RATE, REFERENCE_CEILING = 500, 1_570  # issue 3: leads/s, on a 2-core machine with this ceiling
PHI_KEY = "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ="


def _flag(flags: list[str], name: str, default: float) -> float:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return float(flag.split("=", 1)[1])
    return default


def _seed(database_url: str, redis_url: str) -> str:
    """A clinic with three coordinators and a front-desk user; returns that user's access token."""
    settings = Settings(
        database_url=database_url, redis_url=redis_url, secret_key=SECRET, phi_encryption_key=PHI_KEY
    )
    app = create_app(settings)
    now = clock.now()
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        clinic = create_clinic(
            session=session, hooks=session.database.wiring.auth, name="Bench Ortho", now=now
        )
        password = hash_password("bench password")
        users = []
        for i, role in enumerate([Role.FRONT_DESK, *[Role.TREATMENT_COORDINATOR] * 3]):
            user = User(
                clinic_id=clinic.id,
                email=f"bench{i}@example.com",
                name=f"bench {i}",
                role=role,
                password_hash=password,
                active=True,
                out_of_office=False,
                created_at=now,
                updated_at=now,
            )
            session.add(user)
            users.append(user)
        session.flush()
        front_desk = users[0]
        return tokens.issue(
            secret=SECRET,
            grant=tokens.TokenGrant(
                user_id=front_desk.id, clinic_id=clinic.id, kind="access", lifetime=timedelta(hours=2)
            ),
            now=now,
        )


def server_env(db_url: str, redis_url: str) -> dict[str, str]:
    """The environment of the app's processes (gunicorn, a Celery worker) in a benchmark."""
    return {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET,
        "PHI_ENCRYPTION_KEY": PHI_KEY,
        "FOLLOWUP_ENV": "bench",
        "FOLLOWUP_RATE_LIMIT_PER_MINUTE": "0",  # one token makes all the load: measure capture, not 429s
    }


def lead_body(seed: int, n: int) -> dict:
    """A distinct, valid lead per client and request (so duplicate detection finds nothing)."""
    serial = seed * 1_000_000 + n
    return {
        "first_name": f"Parent{serial}",
        "last_name": "Bench",
        "phone": f"+1415{200 + (serial // 10_000) % 800:03d}{serial % 10_000:04d}",
        "email": f"lead{serial}@example.com",
        "patient_first_name": f"Kid{serial}",
        "patient_last_name": "Bench",
        "treatment_interest": ["INVISALIGN"],
    }


def bare_body(seed: int, n: int) -> dict:
    return lead_body(seed, n)


# What each phase runs: the app (gunicorn app spec), its POST path, and whether clients keep the
# connection alive. The reference for capture is the raw app with the same clients (issue 20).
PHASES = {
    "capture": ("POST /api/leads, kept-alive clients", True),
    "raw": ("raw Flask + psycopg INSERT (ceiling), kept-alive clients", True),
    "capture-new": ("POST /api/leads, a connection per request", False),
    "bare": ("bare SQLAlchemy INSERT, a connection per request", False),
}
TARGET_RAW_RATIO = 0.25  # issue 20: capture ≥ 0.25 of the raw app, kept-alive clients both


def measure(
    *,
    seconds: float,
    clients: int,
    threads: int,
    warm_up: float,
    phases: tuple[str, ...] = tuple(PHASES),
    workers: int = 2,
) -> dict:
    """Each phase's load result (see `run_load`) on one fresh database, and the leads stored."""
    results: dict = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(Path(tmp)) as db_url,
        bench_redis(Path(tmp)) as redis_url,
        host_probe() as probe,
    ):
        migrate.upgrade(db_url)
        token = _seed(db_url, redis_url)
        env = server_env(db_url, redis_url)
        port = free_port()
        captures = [p for p in phases if p.startswith("capture")]
        if captures:
            with gunicorn("app:create_app()", env, port, workers=workers, threads=threads) as server:
                warmed = _warm_up(db_url, port, token, warm_up, clients)
                for index, phase in enumerate(captures):
                    results[phase] = _with_host(
                        probe,
                        (server.pid, db_url),
                        _capture_load,
                        port,
                        token,
                        seconds,
                        clients,
                        first_seed=1000 * index,
                        keep_alive=PHASES[phase][1],
                    )
        if "raw" in phases:
            raw_app.create_table(db_url)
            with gunicorn("bench.raw_app:app", env, port, workers=workers, threads=threads) as server:
                results["raw"] = _with_host(
                    probe, (server.pid, db_url), _insert_load, port, seconds, clients, keep_alive=True
                )
        if "bare" in phases:
            engine = make_engine(db_url)
            bare_app.create_table(engine)
            engine.dispose()
            with gunicorn("bench.bare_app:app", env, port, workers=workers, threads=threads) as server:
                results["bare"] = _with_host(
                    probe, (server.pid, db_url), _insert_load, port, seconds, clients, keep_alive=False
                )
        if captures:
            engine = make_engine(db_url)
            with engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT count(*) FROM leads")).scalar() - warmed
            engine.dispose()
            answered = sum(results[p]["statuses"].get(201, 0) for p in captures)
            results["stored"] = (stored, answered)
        results["dialect"] = "PostgreSQL" if db_url.startswith("postgresql") else "SQLite"
        results["host"] = probe
    return results


def main(flags: list[str]) -> None:
    seconds, clients = _flag(flags, "seconds", 30), int(_flag(flags, "clients", 8))
    threads = int(_flag(flags, "threads", WEB_THREADS))
    warm_up, workers = _flag(flags, "warm-up", 5), int(_flag(flags, "workers", 2))
    results = measure(seconds=seconds, clients=clients, threads=threads, warm_up=warm_up, workers=workers)
    rows = [
        [
            label,
            results[phase]["requests"],
            results[phase]["rate"],
            results[phase]["p50"],
            results[phase]["p95"],
            results[phase]["p99"],
            _cpu(results[phase]),
            results[phase]["web_cpu_ms"],
            results[phase]["database_cpu_ms"] if results["dialect"] == "PostgreSQL" else "n/a",
            _errors(results[phase]["statuses"], 201),
            shown(results[phase].get("host")),
        ]
        for phase, (label, _keep_alive) in PHASES.items()
    ]
    print_table(
        f"Lead capture through gunicorn ({workers} {_worker(threads)} workers, {clients} clients, "
        f"{seconds:g} s each, {results['dialect']})",
        [
            "what",
            "requests",
            "per s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "CPU ms/req",
            "of which web",
            "database",
            "non-201",
            "host slowdown p50 / p90",
        ],
        rows,
    )
    stored, answered = results["stored"]
    print(f"\n  leads stored: {stored} (answered 201: {answered})")
    to_raw = results["capture"]["rate"] / results["raw"]["rate"]
    to_bare = results["capture-new"]["rate"] / results["bare"]["rate"]
    print(
        f"  capture / raw ceiling, kept-alive clients: {to_raw:.2f} (target >= {TARGET_RAW_RATIO}); "
        f"a connection per request, capture / bare SQLAlchemy ceiling: {to_bare:.2f} (issue 3's target, "
        f"500 leads/s where that ceiling was about {REFERENCE_CEILING:,}/s: "
        f"{TARGET_RATE / REFERENCE_CEILING:.2f})"
    )
    print("  CPU ms/req: the whole machine's busy CPU time over the run per request (server, database,")
    print("  load clients): the work a request costs, steadier than the rate on a shared machine; of")
    print("  which web: gunicorn's processes; database: the PostgreSQL backends serving the bench database")
    print(typical(results.get("host")))
    print("  host slowdown: how long a fixed piece of CPU work took during the phase against its fastest")
    print("  time in the run (bench/host.py): a ratio is fair when its two phases ran on a host alike")


def _with_host(probe, served_by: tuple[int, str], load, *args, **kwargs) -> dict:
    """A load's result, with the host's slowdown while it ran (bench/host.py): phases run one after
    the other, and a ratio of two is only fair if the host ran alike for both. And the CPU a request
    cost the web server's processes and the database's (`served_by`: gunicorn's pid, the database
    URL): of the machine's CPU a request costs, the part each side spends."""
    server_pid, db_url = served_by
    web, database, started = process_tree_cpu(server_pid), database_cpu(db_url), time.time()
    result = load(*args, **kwargs)
    requests = max(result["requests"], 1)
    return {
        **result,
        "host": probe.slowdown(started, time.time()),
        "web_cpu_ms": (process_tree_cpu(server_pid) - web) * 1000 / requests,
        "database_cpu_ms": (database_cpu(db_url) - database) * 1000 / requests,
    }


def _insert_load(port: int, seconds: float, clients: int, keep_alive: bool) -> dict:
    return run_load(
        port=port,
        method="POST",
        path="/insert",
        headers={},
        body_factory=bare_body,
        duration=seconds,
        concurrency=clients,
        keep_alive=keep_alive,
    )


def _capture_load(
    port: int, token: str, seconds: float, clients: int, first_seed: int = 0, keep_alive: bool = False
) -> dict:
    """POST /api/leads from `clients` closed-loop clients for `seconds` (see `run_load`)."""
    return run_load(
        port=port,
        method="POST",
        path="/api/leads",
        headers={"Authorization": f"Bearer {token}"},
        body_factory=lead_body,
        duration=seconds,
        concurrency=clients,
        first_seed=first_seed,
        keep_alive=keep_alive,
    )


def _warm_up(db_url: str, port: int, token: str, seconds: float, clients: int) -> int:
    """The same load for `seconds`, unmeasured, then ANALYZE: the clinic's system in operation.

    Just created, the tables are empty and without statistics; PostgreSQL's plans for them (kept by
    the servers' prepared statements) are for one-page tables until autovacuum's first ANALYZE, a
    minute or two into a live system's life. The target is about the system past that point.
    """
    captured = 0
    if seconds > 0:
        captured = _capture_load(port, token, seconds, clients, first_seed=100)["statuses"].get(201, 0)
    engine = make_engine(db_url)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return captured


def _cpu(result: dict) -> float | str:
    return "n/a" if result["cpu_ms"] is None else result["cpu_ms"]


def _worker(threads: int) -> str:
    return f"gthread x{threads}" if threads else "sync"


def _errors(statuses: dict, ok: int) -> int:
    return sum(count for code, count in statuses.items() if code != ok)
