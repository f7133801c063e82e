"""bench/scheduler: the job ledger against plain Celery ETAs (DESIGN.md "Why not just apply_async").

`python -m bench scheduler [--quick] [--parts=capacity,sweep,precision,throughput]`

- capacity: 1,000,000 ledger jobs due in 3 days → growth of a running worker's RSS and of Redis'
  used_memory; beside it, N plain no-op tasks sent with countdown=3 days, which a worker fetches and
  holds in memory.
- sweep: promoting 10,000 due rows among 100,000 and among 10,000,000 (claim alone, and claim +
  publish): `--sweep-tables=100000,10000000`; of each table's other rows `--sweep-history` (0.9) are
  done rows of the past two months (a ledger in operation: on PostgreSQL in their months' partitions),
  the rest pending rows due in 3 days. `--explain` prints the claim's plan (EXPLAIN ANALYZE) at each
  size.
- precision: 2,000 jobs due across the next 60 s, dispatched with their eta at schedule time; and
  2,000 more scheduled with a 10 s horizon, of which those beyond it wait for the promote sweep
  (real beat, 1 s interval). Lateness = finished_at - due_at.
- throughput: N jobs due now, end to end (schedule, commit, publish, claim, trivial handler, done),
  against N plain Celery no-op tasks (publish and run) on the same worker in the same run; the two
  alternate three times at each worker concurrency (2 and 4) and the medians are compared. The
  trivial handler's kind runs in batches (plugin.BATCH rows to a message and a transaction), as a
  kind registered with `batch` does (docs/performance.md, "Ledger rows in batches").

Uses DATABASE_URL (PostgreSQL) when set, else a SQLite file; a private redis-server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psutil
import redis as redis_lib
import sqlalchemy as sa

from app import create_app
from app.platform import clock, migrate
from app.platform.app_db import get_db
from app.platform.config import PROJECT_ROOT
from app.platform.scheduling import Job, queries, sweeps, written
from app.platform.scheduling.models import DONE, OPEN, PENDING, ScheduledJob
from app.platform.scheduling.partitions import queries as partitions
from bench.common import bench_database, bench_redis, median, percentile, print_table
from bench.scheduler import plugin

THREE_DAYS = 3 * 86400
PLUGIN = "bench.scheduler.plugin"
# Secrets have no built-in value: the benchmark's processes get these.
SECRET = "bench-secret-0123456789-abcdefghijklmn"
PHI_KEY = "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ="
PARTS = ("capacity", "sweep", "precision", "throughput")


@dataclass
class Sizes:
    pending: int = 1_000_000
    eta_tasks: int = 50_000
    sweep_due: int = 10_000
    sweep_tables: tuple[int, ...] = (100_000, 10_000_000)
    sweep_history: float = 0.9  # of the rows around the due ones: done, of the past two months
    explain: bool = False
    precision_jobs: int = 2_000
    precision_window: float = 60.0
    throughput_jobs: int = 5_000
    throughput_concurrency: tuple[int, ...] = (2, 4)
    throughput_repeats: int = 3

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            pending=100_000,
            eta_tasks=5_000,
            sweep_due=1_000,
            sweep_tables=(10_000, 100_000),
            precision_jobs=200,
            precision_window=15.0,
            throughput_jobs=1_000,
        )


@dataclass
class Bench:
    app: object
    db_url: str
    redis_url: str
    workdir: Path
    sizes: Sizes
    rows: list[list] = field(default_factory=list)
    counter: int = 0
    concurrency: int = 2

    @property
    def db(self):
        return self.app.extensions["followup.db"]

    @property
    def redis(self):
        return redis_lib.Redis.from_url(self.redis_url)

    @property
    def sender(self):
        return self.app.extensions["followup.dispatcher"].celery

    def add(self, part: str, measure: str, value, unit: str, target: str = "") -> None:
        self.rows.append([part, measure, value, unit, target])
        shown = (
            f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value
        )
        print(f"  {part:<11} {measure:<58} {shown} {unit}  {target}", file=sys.stderr, flush=True)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.db_url,
            REDIS_URL=self.redis_url,
            PYTHONPATH=str(PROJECT_ROOT),
            FOLLOWUP_PLUGINS=PLUGIN,
            FOLLOWUP_ENV="bench",
            SECRET_KEY=SECRET,
            PHI_ENCRYPTION_KEY=PHI_KEY,
        )
        env.update(extra)
        return env

    def start(self, kind: str, *args: str, **extra_env: str) -> subprocess.Popen:
        self.counter += 1
        log = open(self.workdir / f"{kind}{self.counter}.log", "ab")  # noqa: SIM115 - child keeps it
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.main", kind, "--loglevel=WARNING", *args],
            cwd=PROJECT_ROOT,
            env=self.env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def worker(self, **extra_env: str) -> tuple[subprocess.Popen, str]:
        name = f"bench{self.counter + 1}"
        options = [
            f"--concurrency={self.concurrency}",
            f"--hostname={name}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        process = self.start("worker", *options, **extra_env)
        hostname = f"{name}@{socket.gethostname()}"
        wait(lambda: self.sender.control.ping(destination=[hostname], timeout=0.5), 60, f"{name} to start")
        return process, hostname

    def beat(self, **extra_env: str) -> subprocess.Popen:
        return self.start("beat", f"--schedule={self.workdir / f'beat{self.counter + 1}'}", **extra_env)

    def used_memory(self) -> int:
        return int(self.redis.info("memory")["used_memory"])

    def count(self, *where) -> int:
        with self.db.unit_of_work() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(ScheduledJob).where(*where))

    def reset(self) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(sa.delete(ScheduledJob))
        self.redis.flushall()
        self.analyze()

    def analyze(self) -> None:
        if self.db.dialect == "postgresql":  # what autovacuum would do after a bulk load
            with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE scheduled_jobs"))


def stop(process: subprocess.Popen, *, kill: bool = False) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def tree_rss(pid: int) -> int:
    """RSS of a worker: its main process and pool children."""
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def wait(predicate: Callable, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s")


def bulk_insert_pending(bench: Bench, count: int, *, due_in: float, prefix: str) -> float:
    """Insert pending rows directly, in batches (no dispatch); returns seconds taken."""
    now = clock.now()
    due = now + timedelta(seconds=due_in)

    def pending(i: int) -> dict:
        return {
            "kind": plugin.TOUCH,
            "queue": "realtime",
            "payload": {},
            "due_at": due + timedelta(milliseconds=i % 60_000),
            "status": PENDING,
            "attempts": 0,
            "dedupe_key": f"{prefix}:{i}",
            "created_at": now,
        }

    return bulk_insert(bench, count, pending)


HISTORY_DAYS = 60
CLAIM_REPEATS = 3


def bulk_insert_history(bench: Bench, count: int, *, prefix: str) -> float:
    """Insert done rows created, due and finished over the past two months; returns seconds taken.
    On PostgreSQL their months' partitions are made first, as the purge makes them ahead."""
    now = clock.now()
    if partitions.is_partitioned(bench.db):
        month = partitions.month_of(now - timedelta(days=HISTORY_DAYS))
        while month <= now:
            partitions.create_partition(bench.db, month)
            month = partitions.next_month(month)
    step = HISTORY_DAYS * 86400 / max(count, 1)

    def done(i: int) -> dict:
        created = now - timedelta(days=HISTORY_DAYS) + timedelta(seconds=i * step)
        return {
            "kind": plugin.TOUCH,
            "queue": "realtime",
            "payload": {},
            "due_at": created + timedelta(minutes=5),
            "status": DONE,
            "attempts": 1,
            "dispatched_at": created,
            "finished_at": created + timedelta(minutes=5),
            "dedupe_key": f"{prefix}:{i}",
            "created_at": created,
        }

    return bulk_insert(bench, count, done)


_COPIED = ("kind", "queue", "payload", "due_at", "status", "attempts", "dispatched_at", "finished_at",
           "dedupe_key", "created_at")  # fmt: skip


def bulk_insert(bench: Bench, count: int, row: Callable[[int], dict]) -> float:
    """Insert `count` rows (`row(i)` each): COPY on PostgreSQL, batched INSERTs elsewhere."""
    started = time.perf_counter()
    table = ScheduledJob.__table__
    if bench.db.dialect == "postgresql":
        payload = json.dumps({})
        raw = bench.db.engine.raw_connection()
        try:
            sql = f"COPY scheduled_jobs ({', '.join(_COPIED)}) FROM STDIN"
            with raw.driver_connection.cursor() as cursor, cursor.copy(sql) as copy:
                for i in range(count):
                    values = {**row(i), "payload": payload}
                    copy.write_row(tuple(values.get(name) for name in _COPIED))
            raw.commit()
        finally:
            raw.close()
        return time.perf_counter() - started
    batch = 5_000
    for start in range(0, count, batch):
        rows = [row(i) for i in range(start, min(start + batch, count))]
        with bench.db.engine.begin() as conn:
            conn.execute(sa.insert(table), rows)
    return time.perf_counter() - started


# --- parts ----------------------------------------------------------------------------------------


def part_sweep_and_capacity(bench: Bench, *, capacity: bool, sweep: bool) -> None:
    """Sweep cost among each table size of far-future rows; while loading the largest, capacity."""
    inserted = 0
    for table_size in bench.sizes.sweep_tables:
        if capacity and table_size == max(bench.sizes.sweep_tables):
            capacity_of_the_ledger(bench, table_size - inserted)
        else:
            more = table_size - inserted
            history = round(more * bench.sizes.sweep_history)
            seconds = bulk_insert_history(bench, history, prefix=f"old{table_size}")
            far = more - history
            seconds += bulk_insert_pending(bench, far, due_in=THREE_DAYS, prefix=f"far{table_size}")
            bench.add(
                "setup",
                f"bulk insert of {history:,} done and {far:,} pending rows (table now {table_size:,})",
                round(seconds, 1),
                "s",
            )
        inserted = table_size
        if sweep:
            measure_sweep(bench, table_size)


def measure_sweep(bench: Bench, table_size: int) -> None:
    due = bench.sizes.sweep_due
    bulk_insert_pending(bench, due, due_in=-1, prefix=f"due{table_size}")
    bench.analyze()
    settings = bench.app.config["SETTINGS"]
    with bench.app.app_context():
        now = clock.now()
        until = now + timedelta(seconds=settings.schedule_horizon_seconds)
        # The claim alone (one statement, then rolled back so the real sweep below finds the rows),
        # three times: a single run on this shared machine swings by half.
        claims = []
        for _ in range(CLAIM_REPEATS):
            with bench.db.engine.connect() as conn:
                session = bench.db.new_unit(bind=conn)
                started = time.perf_counter()
                claimed = sweeps.claim_due(session=session, now=now, until=until, limit=due)
                claims.append(time.perf_counter() - started)
                session.rollback()
                session.close()
            assert len(claimed) == due, len(claimed)
        if bench.sizes.explain:  # after the measure: its rolled-back run leaves dead row versions
            explain_claim(bench, now=now, until=until, table_size=table_size)
        started = time.perf_counter()
        promoted = sweeps.promote_due(db=get_db(), now=now)
        sweep_seconds = time.perf_counter() - started
    assert promoted == due, promoted
    table = f"{table_size:,}"
    runs = ", ".join(f"{seconds * 1000:.0f}" for seconds in claims)
    bench.add(
        "sweep",
        f"claim {due:,} due among {table} (one UPDATE..RETURNING), median of {runs} ms",
        median(claims),
        "s",
        "<= 0.2 s",
    )
    bench.add(
        "sweep",
        f"promote_due {due:,} among {table}: claim+commit+publish (batches of {settings.sweep_batch_size:,})",
        sweep_seconds,
        "s",
        "<= 1 s",
    )
    with bench.db.engine.begin() as conn:  # the due rows, found among the live ones (partial index)
        conn.execute(
            sa.delete(ScheduledJob).where(
                ScheduledJob.status.in_(OPEN), ScheduledJob.dedupe_key.like(f"due{table_size}:%")
            )
        )
    bench.redis.flushall()


def explain_claim(bench: Bench, *, now, until, table_size: int) -> None:
    """The promote sweep's claim, its plan as run (EXPLAIN ANALYZE, BUFFERS), rolled back."""
    if bench.db.dialect != "postgresql":
        return
    with bench.db.engine.connect() as conn:
        session = bench.db.new_unit(bind=conn)
        queries.without_jit(session)  # as the sweep runs it
        statement = sweeps.claim_statement(
            session,
            where=[ScheduledJob.status == PENDING, ScheduledJob.due_at <= until],
            values={"status": "dispatched", "dispatched_at": now},
            limit=bench.sizes.sweep_due,
        )
        compiled = statement.compile(dialect=conn.dialect)
        plan = conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, BUFFERS) {compiled.string}",
            {name: compiled.params[name] for name in compiled.params},
        )
        lines = [row[0] for row in plan]
        session.rollback()
        session.close()
    print(f"EXPLAIN ANALYZE of the claim among {table_size:,}:", *lines, sep="\n  ", file=sys.stderr)


def capacity_of_the_ledger(bench: Bench, more: int) -> None:
    """A running worker, with beat sweeping every second, while `more` jobs due in 3 days are loaded."""
    worker, _ = bench.worker()
    beat = bench.beat(FOLLOWUP_PROMOTE_INTERVAL="1", FOLLOWUP_REDISPATCH_INTERVAL="1")
    try:
        time.sleep(5)
        rss_before, mem_before = tree_rss(worker.pid), bench.used_memory()
        seconds = bulk_insert_pending(bench, more, due_in=THREE_DAYS, prefix="capacity")
        bench.add(
            "setup", f"bulk insert of {more:,} pending rows while the worker runs", round(seconds, 1), "s"
        )
        bench.analyze()
        time.sleep(8)  # eight more promote and redispatch sweeps over the full table
        rss_after, mem_after = tree_rss(worker.pid), bench.used_memory()
        pending = bench.count(ScheduledJob.status == PENDING)
    finally:
        stop(beat)
        stop(worker)
    label = f"ledger, {pending:,} pending due in 3 days"
    bench.add("capacity", f"{label}: worker RSS (2 pool processes)", rss_after / 2**20, "MB")
    bench.add("capacity", f"{label}: worker RSS growth", (rss_after - rss_before) / 2**20, "MB", "<= 50 MB")
    bench.add(
        "capacity", f"{label}: Redis used_memory growth", (mem_after - mem_before) / 2**20, "MB", "<= 50 MB"
    )


def part_capacity_eta(bench: Bench) -> None:
    """Plain Celery: N no-op tasks with countdown=3 days; the worker fetches and holds every one."""
    bench.reset()
    n = bench.sizes.eta_tasks
    worker, _ = bench.worker()
    try:
        time.sleep(3)
        rss_before, mem_before = tree_rss(worker.pid), bench.used_memory()
        started = time.perf_counter()
        with bench.sender.producer_or_acquire() as producer, producer.batch(max_size=1000):
            for _ in range(n):
                bench.sender.send_task(plugin.NOOP, countdown=THREE_DAYS, queue="realtime", producer=producer)
        publish_seconds = time.perf_counter() - started
        mem_published = bench.used_memory()
        r = bench.redis
        wait(lambda: r.llen("realtime") == 0, 600, "the worker to fetch every ETA task", interval=0.5)
        fetch_seconds = time.perf_counter() - started
        time.sleep(2)
        rss_after, mem_after = tree_rss(worker.pid), bench.used_memory()
    finally:
        stop(worker, kill=True)
        bench.redis.flushall()
    growth = rss_after - rss_before
    bench.add("capacity", f"apply_async(countdown=3 days) x {n:,}: publish", publish_seconds, "s")
    bench.add("capacity", "apply_async: until the worker held them all", fetch_seconds, "s")
    bench.add("capacity", "apply_async: worker RSS growth", growth / 2**20, "MB")
    bench.add(
        "capacity", "apply_async: worker RSS growth per task", growth / n / 1024, "KB", "(DESIGN: 9.6 KB)"
    )
    bench.add(
        "capacity",
        "apply_async: Redis used_memory growth (all queued)",
        (mem_published - mem_before) / 2**20,
        "MB",
    )
    bench.add(
        "capacity",
        "apply_async: Redis used_memory growth (held, unacked)",
        (mem_after - mem_before) / 2**20,
        "MB",
    )
    bench.add("capacity", "apply_async: worker RSS extrapolated to 1,000,000", growth / n * 1e6 / 2**30, "GB")


def part_precision(bench: Bench) -> None:
    """Lateness of jobs dispatched with their eta, and of jobs promoted by the sweep (real beat)."""
    bench.reset()
    sizes, settings = bench.sizes, bench.app.config["SETTINGS"]
    horizon, window = 10.0, sizes.precision_window
    env = {"FOLLOWUP_SCHEDULE_HORIZON_SECONDS": str(horizon), "FOLLOWUP_PROMOTE_INTERVAL": "1"}
    worker, _ = bench.worker(**env)
    beat = bench.beat(**env)
    try:
        time.sleep(2)
        now = clock.now()

        def jobs(prefix):
            n = sizes.precision_jobs
            return [
                {
                    "kind": plugin.TOUCH,
                    "due_at": now + timedelta(seconds=1 + (window - 1) * i / n),
                    "dedupe_key": f"{prefix}:{i}",
                }
                for i in range(n)
            ]

        with bench.app.app_context():
            with bench.db.unit_of_work() as session:  # default horizon (10 min): every row goes out now
                within = [j.id for j in _schedule_now(session, jobs("within"), now)]
            old = settings.schedule_horizon_seconds
            settings.schedule_horizon_seconds = horizon
            try:
                with bench.db.unit_of_work() as session:
                    created = _schedule_now(session, jobs("beyond"), now)
            finally:
                settings.schedule_horizon_seconds = old
        beyond = [j.id for j in created if j.due_at > now + timedelta(seconds=horizon)]
        total = 2 * sizes.precision_jobs
        wait(lambda: bench.count(ScheduledJob.status == "done") == total, window + 60, "precision jobs")
    finally:
        stop(beat)
        stop(worker)
    with bench.db.unit_of_work() as session:
        times = session.execute(
            sa.select(ScheduledJob.id, ScheduledJob.due_at, ScheduledJob.finished_at)
        ).all()
    late = {job_id: finished - due for job_id, due, finished in times}
    for label, ids, target in (
        (f"{len(within):,} due over {window:.0f} s, dispatched at schedule", within, "p99 <= 1 s"),
        (f"{len(beyond):,} beyond a {horizon:.0f} s horizon, promoted by 1 s sweeps", beyond, "p99 <= 2 s"),
    ):
        values = [late[i].total_seconds() for i in ids]
        bench.add("precision", f"{label}: lateness p50", percentile(values, 50), "s")
        bench.add("precision", f"{label}: lateness p99", percentile(values, 99), "s", target)
        bench.add("precision", f"{label}: lateness max", max(values), "s")
        bench.add("precision", f"{label}: ran early (< 0 s)", sum(v < 0 for v in values), "jobs")


def part_throughput(bench: Bench) -> None:
    """Jobs/s end to end through the ledger against plain Celery no-op tasks/s, same worker, same run."""
    for concurrency in bench.sizes.throughput_concurrency:
        bench.reset()
        bench.concurrency = concurrency
        try:
            throughput_at(bench, concurrency)
        finally:
            bench.concurrency = 2


def throughput_at(bench: Bench, concurrency: int) -> None:
    """Alternate no-op and ledger runs on one worker; medians, since this machine's speed wanders."""
    n, reps, r = bench.sizes.throughput_jobs, bench.sizes.throughput_repeats, bench.redis
    noop_rates, ledger_rates, schedule_seconds = [], [], []
    worker, _ = bench.worker()
    try:
        time.sleep(2)
        for rep in range(reps):
            started = time.perf_counter()
            with bench.sender.producer_or_acquire() as producer, producer.batch(max_size=1000):
                for _ in range(n):
                    bench.sender.send_task(plugin.NOOP, queue="realtime", producer=producer)
            wait(
                lambda: r.llen("realtime") == 0 and r.hlen("unacked") == 0, 600, "no-op tasks", interval=0.02
            )
            noop_rates.append(n / (time.perf_counter() - started))

            now = clock.now()
            jobs = [
                {"kind": plugin.TOUCH, "due_at": now, "dedupe_key": f"tp{concurrency}.{rep}:{i}"}
                for i in range(n)
            ]
            done_before = bench.count(ScheduledJob.status == "done")
            started = time.perf_counter()
            with bench.app.app_context(), bench.db.unit_of_work() as session:
                for spec in jobs:  # as the app does: written at the commit, in one statement
                    session.schedule(Job(now=now, **spec))
            schedule_seconds.append(time.perf_counter() - started)
            target = done_before + n
            wait(
                lambda t=target: bench.count(ScheduledJob.status == "done") == t,
                900,
                "ledger jobs",
                interval=0.2,
            )
            ledger_rates.append(n / (time.perf_counter() - started))
    finally:
        stop(worker)
    noop, ledger = median(noop_rates), median(ledger_rates)
    label = f"{n:,} x {reps}, worker --concurrency={concurrency}"
    spread = lambda rates: f"{min(rates):,.0f}-{max(rates):,.0f}"  # noqa: E731
    bench.add("throughput", f"no-op tasks, {label}: median (runs {spread(noop_rates)})", noop, "tasks/s")
    bench.add(
        "throughput",
        f"ledger jobs, {label}: schedule + commit + publish, median",
        median(schedule_seconds),
        "s",
    )
    bench.add("throughput", f"ledger jobs, {label}: median (runs {spread(ledger_rates)})", ledger, "jobs/s")
    bench.add(
        "throughput",
        f"ledger / no-op, --concurrency={concurrency} (medians)",
        100 * ledger / noop,
        "%",
        ">= 100 %",
    )


def _schedule_now(session, specs: list[dict], now) -> list[ScheduledJob]:
    """The jobs through `uow.schedule`, written at once: the rows created (their ids and due times)."""
    for spec in specs:
        session.schedule(Job(now=now, **spec))
    return written(session)


# --- entry point ----------------------------------------------------------------------------------


def parse(flags: list[str]) -> tuple[Sizes, list[str]]:
    sizes = Sizes.quick() if "--quick" in flags else Sizes()
    parts = list(PARTS)
    for flag in flags:
        name, _, value = flag.lstrip("-").partition("=")
        if name == "parts":
            parts = [p for p in value.split(",") if p]
            unknown = set(parts) - set(PARTS)
            if unknown:
                raise SystemExit(
                    f"unknown parts: {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}"
                )
        elif name in ("sweep-tables", "throughput-concurrency"):
            setattr(sizes, name.replace("-", "_"), tuple(int(v) for v in value.split(",")))
        elif name == "explain":
            sizes.explain = True
        elif name.replace("-", "_") in Sizes.__dataclass_fields__ and value:
            field_name = name.replace("-", "_")
            setattr(sizes, field_name, type(getattr(sizes, field_name))(value))
        elif name != "quick":
            raise SystemExit(f"unknown flag {flag}")
    return sizes, parts


def main(flags: list[str]) -> None:
    sizes, parts = parse(flags)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    rows, dialect = measure(sizes, parts)
    print_table(
        f"bench/scheduler on {dialect} "
        f"({time.perf_counter() - started:.0f} s, {os.cpu_count()} cores; 1-min load average "
        f"{load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end)",
        ["part", "measure", "value", "unit", "target"],
        rows,
    )


def measure(sizes: Sizes, parts: list[str]) -> tuple[list[list], str]:
    """The parts' rows ([part, measure, value, unit, target]) on a fresh database, and its dialect."""
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        workdir = Path(tmp)
        with bench_database(workdir) as db_url, bench_redis(workdir) as redis_url:
            migrate.upgrade(db_url)
            app = create_app(
                {
                    "database_url": db_url,
                    "redis_url": redis_url,
                    "secret_key": SECRET,
                    "phi_encryption_key": PHI_KEY,
                    "plugins": [PLUGIN],  # the trivial kind, in this process's engine as in the workers'
                }
            )
            bench = Bench(app=app, db_url=db_url, redis_url=redis_url, workdir=workdir, sizes=sizes)
            bench.sender.send_task(plugin.NOOP, queue="realtime")  # connect once, as a running process has
            bench.redis.flushall()
            print(
                f"database: {app.extensions['followup.db'].dialect}; parts: {', '.join(parts)}",
                file=sys.stderr,
            )
            if "sweep" in parts or "capacity" in parts:
                if "sweep" not in parts:
                    sizes.sweep_tables = (sizes.pending,)
                if "capacity" in parts:  # capacity is measured while loading the largest table
                    sizes.sweep_tables = tuple(sorted({*sizes.sweep_tables, sizes.pending}))
                part_sweep_and_capacity(bench, capacity="capacity" in parts, sweep="sweep" in parts)
            if "capacity" in parts:
                part_capacity_eta(bench)
            if "precision" in parts:
                part_precision(bench)
            if "throughput" in parts:
                part_throughput(bench)
            app.extensions["followup.db"].engine.dispose()
    return bench.rows, bench.app.extensions["followup.db"].dialect
