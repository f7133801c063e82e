"""Shared helpers for benchmarks: infrastructure like the tests', and table printing."""

from __future__ import annotations

import os
import statistics
import tempfile
from contextlib import contextmanager
from pathlib import Path

import psutil
from sqlalchemy.engine import make_url

from app.devtools.local_redis import LocalRedis
from tests.databases import fresh_postgres_database


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux: /proc/stat), else None.

    The difference over a load run, divided by its requests, is the CPU one request cost across
    every process (server, database, load clients): steadier than a rate on a shared, noisy
    machine, where the rate moves with what else runs but the work per request does not.
    """
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its children (gunicorn's or Celery's workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def database_cpu(url) -> float:
    """CPU seconds so far of the PostgreSQL backends serving the database of `url` (a URL or its
    string; 0 on SQLite): a request's cost in the database, beside its web process's."""
    parsed = make_url(url)
    name = parsed.database if parsed.get_backend_name() == "postgresql" else None
    total = 0.0
    for process in psutil.process_iter(["cmdline"]) if name else []:
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if cmdline.startswith("postgres:") and f" {name} " in cmdline:
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(title: str, headers: list[str], rows: list[list]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) if index else c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@contextmanager
def bench_database(workdir: Path):
    """A fresh database: on the PostgreSQL of DATABASE_URL if set, else a SQLite file."""
    given = os.environ.get("DATABASE_URL")
    if not given or given.startswith("sqlite"):
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    url = make_url(given.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg")
    with fresh_postgres_database(url.render_as_string(hide_password=False), "followup_bench") as fresh:
        yield fresh


@contextmanager
def bench_redis(workdir: Path):
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    server = LocalRedis(workdir / "redis").start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def bench_app(*, secret_key: str, phi_encryption_key: str, **settings):
    """An app on a fresh, migrated bench database (DATABASE_URL's server, else SQLite) and a private
    Redis, with the rate limit off: what a benchmark measures against."""
    from app import create_app
    from app.platform import migrate
    from app.platform.config import Settings

    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(Path(tmp)) as url,
        bench_redis(Path(tmp)) as redis_url,
    ):
        migrate.upgrade(url)
        yield create_app(
            Settings(
                env="bench",
                database_url=url,
                redis_url=redis_url,
                secret_key=secret_key,
                phi_encryption_key=phi_encryption_key,
                rate_limit_per_minute=0,
                **settings,
            )
        )
