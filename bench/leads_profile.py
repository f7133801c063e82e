"""Where a lead capture's time goes: POST /api/leads in-process, statement by statement.

`make bench BENCH_ARGS=leads_profile` (SQLite) or with DATABASE_URL=postgresql://... Flags:
--count=300 (captures measured, after 20 to warm up). Prints the statements one capture runs, each
with its mean execution time, and the capture's wall and CPU time (this process: Flask, marshmallow,
SQLAlchemy, psycopg) and that of the database server's backends serving it. No HTTP server: the test client.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import event

from app import create_app
from app.platform import migrate
from app.platform.config import Settings
from app.platform.db import Frozen
from bench.common import bench_database, bench_redis, database_cpu, print_table
from bench.leads_write import PHI_KEY, SECRET, _flag, _seed, lead_body

WARM_UP = 20


def _first_words(sql: str) -> str:
    """A statement's kind and table, e.g. 'INSERT INTO events', 'SELECT ... FROM leads'."""
    words = " ".join(sql.split())
    if words.startswith(("INSERT", "UPDATE", "DELETE")):
        return " ".join(words.split()[:3]).removeprefix("DELETE ").strip()
    if not words.startswith("SELECT"):
        return " ".join(words.split()[:2])  # BEGIN IMMEDIATE (SQLite), ...
    tables = words.split(" FROM ", 1)[1].split()[0] if " FROM " in words else "?"
    return f"SELECT ... FROM {tables}"


def main(flags: list[str]) -> None:
    count = int(_flag(flags, "count", 300))
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(Path(tmp)) as db_url,
        bench_redis(Path(tmp)) as redis_url,
    ):
        migrate.upgrade(db_url)
        token = _seed(db_url, redis_url)
        settings = Settings(
            database_url=db_url,
            redis_url=redis_url,
            secret_key=SECRET,
            phi_encryption_key=PHI_KEY,
            rate_limit_per_minute=0,
        )
        app = create_app(settings)
        engine = app.extensions["followup.db"].engine
        executed: list[tuple[str, float]] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _started(conn, cursor, statement, params, context, executemany):
            conn.info["bench.started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _done(conn, cursor, statement, params, context, executemany):
            if not conn.info.get("bench.compiled_once"):
                executed.append((_first_words(statement), time.perf_counter() - conn.info["bench.started"]))

        # Hot statements run on the driver (app.platform.db.Frozen), unseen by SQLAlchemy's events on
        # PostgreSQL.
        run_compiled = Frozen.execute

        def timed(self, connection, params=None):
            started = time.perf_counter()
            connection.info["bench.compiled_once"] = True
            try:
                return run_compiled(self, connection, params)
            finally:
                connection.info.pop("bench.compiled_once")
                sql = self._compile(connection.dialect)[0]
                executed.append((f"{_first_words(sql)} *", time.perf_counter() - started))

        Frozen.execute = timed

        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        for n in range(WARM_UP):
            assert client.post("/api/leads", json=lead_body(90, n), headers=headers).status_code == 201
        executed.clear()
        profiler = cProfile.Profile(time.process_time) if "--profile" in flags else None  # CPU, not waits
        wall, cpu, in_database = time.perf_counter(), time.process_time(), database_cpu(db_url)
        if profiler:
            profiler.enable()
        for n in range(count):
            assert client.post("/api/leads", json=lead_body(91, n), headers=headers).status_code == 201
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        in_database = database_cpu(db_url) - in_database
        Frozen.execute = run_compiled
        engine.dispose()

    by_statement: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for name, seconds in executed:
        by_statement[name][0] += 1
        by_statement[name][1] += seconds
    rows = [[name, n / count, total / n * 1000] for name, (n, total) in by_statement.items()]
    dialect = "PostgreSQL" if db_url.startswith("postgresql") else "SQLite"
    print_table(
        f"Statements of one POST /api/leads (mean of {count}, {dialect}, in execution order)",
        ["statement", "per capture", "ms each"],
        rows,
    )
    print(
        "  * compiled once, run on the driver (app.platform.db.Frozen); WITH: the batch of a new lead's rows"
    )
    in_db = sum(seconds for _, seconds in executed) / count * 1000
    print(f"\n  statements per capture: {len(executed) / count:.1f} (time in them: {in_db:.2f} ms)")
    print(
        f"  per capture: wall {wall / count * 1000:.2f} ms, CPU of this process {cpu / count * 1000:.2f} ms,"
        f" of the database's backends {in_database / count * 1000:.2f} ms"
    )
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(
            *(["tottime"] if "--tottime" in flags else ["cumulative"])
        ).print_stats(60)
        print(out.getvalue())
