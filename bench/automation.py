"""Automation: rule evaluation cost, and capture → initial call task + coordinator told, under load.

`make bench BENCH_ARGS=automation` (SQLite) or with DATABASE_URL=postgresql://... Flags:
--rules=50, --evaluations=2000 (part 1); --rate=100 (leads/s), --seconds=60, --clients=8,
--concurrency=2 (worker processes on the realtime queue), --warm-up=10 (seconds of the same load,
unmeasured, then ANALYZE: see `_steady_state`), --modes=fresh,warm,fire (and cold, first),
--fire=10000 (the fire's bulk tasks and emails), --broker=redis|rabbitmq (Celery's broker: the
bench's Redis, or a fresh virtual host on the RabbitMQ of FOLLOWUP_TEST_RABBITMQ_URL, by default
127.0.0.1:5672, Redis staying for the rest) (part 2); --skip-load for part 1 only, --skip-rules
for part 2 only; --window=5 (seconds a row of the by-time table); --logs=DIR (keep the stack's
process logs there); --knee=20,40,60,80,100 (instead of the modes: on one warm stack, --seconds of
load at each rate in turn, and the knee: the lowest rate whose p99 crosses the target).
Targets (issue 5): 50 active rules against one event, p99 <= 2 ms; capture → the initial call task
in my-tasks and the coordinator notified, p99 <= 1 s with 100 leads/s arriving for 60 s.

Part 2 times each lead from its `created_at` (the capture transaction's clock) to the
`created_at` of its task and of the coordinator's notification (the worker's clock, same host),
both written in the job's one transaction: visible the moment it commits.
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing as mp
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.bootstrap import wiring_of
from app.devtools.local_redis import free_port
from app.domains.activities.events import ActivityLogged
from app.domains.auth import tokens
from app.domains.auth.models import Clinic
from app.domains.automation import processing
from app.domains.automation import rules as rule_language
from app.domains.automation.language import context as rule_context
from app.domains.automation.models import AutomationRule
from app.domains.intake import service as intake
from app.domains.leads.models import Lead
from app.domains.outbound import service as notifications
from app.domains.outbound.models import Notification
from app.domains.tasks.models import LeadTask
from app.platform import clock, migrate
from app.platform.config import Settings
from app.platform.events.types import Delivered
from app.platform.roles import Actor
from bench.bulk import _stop, _wait, _worker
from bench.common import bench_database, bench_redis, database_cpu, percentile, print_table, process_tree_cpu
from bench.host import HostProbe, host_probe, shown, typical
from bench.http_load import gunicorn
from bench.leads_write import PHI_KEY, SECRET, _flag, _seed, lead_body, server_env
from bench.stack import procfile_processes, procfile_stack, release, stack_env
from tests.brokers import rabbitmq_vhost

SMTP_NICENESS = 10  # as the Procfile's background worker

OUTCOMES = ("spoke", "no_answer", "voicemail", "callback_requested", "wrong_number")


def _settings(db_url: str, redis_url: str, broker_url: str | None = None) -> Settings:
    return Settings(
        database_url=db_url,
        redis_url=redis_url,
        broker_url=broker_url,
        secret_key=SECRET,
        phi_encryption_key=PHI_KEY,
    )


def _extra_rules(session, clinic_id: int, count: int, now) -> None:
    """Rules on activity.logged shaped like a clinic's: 2-3 conditions on event, lead and computed fields."""
    for i in range(count):
        conditions = [
            {"field": "event.outcome", "operator": "equals", "value": OUTCOMES[i % len(OUTCOMES)]},
            {"field": "lead.status", "operator": "in", "value": ["NEW", "ACTIVE"]},
        ]
        if i % 3 == 0:
            conditions.append(
                {"field": "lead.treatment_interest", "operator": "contains", "value": "INVISALIGN"}
            )
        if i % 5 == 0:
            conditions.append(
                {"field": "failed_attempts_in_a_row", "operator": "greater_than", "value": i % 4}
            )
        session.add(
            AutomationRule(
                clinic_id=clinic_id,
                name=f"bench rule {i}",
                trigger="activity.logged",
                conditions=conditions,
                actions=[{"type": "suggest", "suggestion": "call"}],
                priority=1000 + i,
                stop_processing=False,
                active=True,
                version=1,
                created_at=now,
                updated_at=now,
                created_by="bench",
                updated_by="bench",
            )
        )


def rule_evaluation(db_url: str, redis_url: str, n_rules: int, evaluations: int) -> list[list]:
    """Evaluate the clinic's active activity.logged rules against one call event, many times."""
    app = create_app(_settings(db_url, redis_url))
    now, cache = clock.now(), wiring_of(app).caches.rules  # the engine's rule cache, as the consumer's
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        clinic_id = _first_clinic(session)
        existing = len(
            processing.active_rules(
                session=session, clinic_id=clinic_id, trigger="activity.logged", cache=cache
            )
        )
        _extra_rules(session, clinic_id, n_rules - existing, now)
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        lead = _a_lead(session, clinic_id, now)
        rules = processing.active_rules(
            session=session, clinic_id=clinic_id, trigger="activity.logged", cache=cache
        )
        call = ActivityLogged(
            activity_id=0, lead_id=lead.id, type="PHONE_CALL", direction="OUTBOUND", outcome="no_answer",
            occurred_at=now.isoformat(), system=False, contact=False, attempt=True,
        )  # fmt: skip
        # As the processing hands it to automation's consumer.
        event = Delivered(
            id=0, clinic_id=clinic_id, subject_type="lead", subject_id=lead.id, occurred_at=now, data=call
        )
        pure, whole = [], []
        for _ in range(evaluations):
            context = rule_context.build_context(
                session=session, lead=lead, event_type=event.type, payload=event.payload(), at=now
            )
            started = time.perf_counter()
            for rule in rules:
                if rule_language.matches(rule.compiled, context):
                    rule_language.evaluate(rule.conditions, context)
            pure.append(time.perf_counter() - started)
            started = time.perf_counter()
            processing.matching_rules(session=session, event=event, lead=lead, rule_cache=cache)
            whole.append(time.perf_counter() - started)
        session.rollback()
    return [
        [
            f"{len(rules)} rules: conditions (computed fields included)",
            evaluations,
            *(percentile(pure, p) * 1000 for p in (50, 95, 99)),
        ],
        [
            f"{len(rules)} rules: rule-set check + context + conditions",
            evaluations,
            *(percentile(whole, p) * 1000 for p in (50, 95, 99)),
        ],
    ]


def _first_clinic(session) -> int:
    return session.scalar(sa.select(Clinic.id).order_by(Clinic.id).limit(1))


def _a_lead(session, clinic_id: int, now) -> Lead:
    lead = session.scalar(sa.select(Lead).where(Lead.clinic_id == clinic_id).limit(1))
    if lead is not None:
        return lead
    actor = Actor(clinic_id=clinic_id, permissions=frozenset({"lead:create"}), user_id=None, api_key_id=0)
    data = {"first_name": "Bench", "last_name": "Lead", "treatment_interest": ["INVISALIGN"]}
    return intake.create_lead(session=session, actor=actor, new=intake.NewLead(data=data), now=now).lead


# --- part 2: capture under a steady arrival rate ---------------------------------------------------


def _paced_client(port, token, seed, rate, seconds, ready, go, began, queue):
    """Open loop: send at a fixed pace whatever the answers' speed (a late request goes at once).

    The pace starts when every client is up (`go`, at `began`): a forked child can take seconds to
    start (the parent's after-fork hooks), which would otherwise eat into a short run."""
    ready.put(seed)
    go.wait()
    interval, n, statuses, lags = 1.0 / rate, 0, {}, []
    start, stop_at = began.value + (seed % 10) * interval / 10, began.value + seconds
    while (due := start + n * interval) < stop_at:
        time.sleep(max(0.0, due - time.monotonic()))
        lags.append(time.monotonic() - due)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            body = json.dumps(lead_body(seed, n)).encode()
            conn.request(
                "POST",
                "/api/leads",
                body=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
        except OSError:
            statuses[0] = statuses.get(0, 0) + 1
        finally:
            conn.close()
        n += 1
    queue.put((statuses, lags))


def _send_paced(port: int, token: str, rate: float, seconds: float, clients: int, seed: int):
    """`clients` paced clients sending `rate` leads/s in all for `seconds`: (statuses, lags, wall time)."""
    return _collect_paced(_start_paced(port, token, rate, seconds, clients, seed))


def _start_paced(port: int, token: str, rate: float, seconds: float, clients: int, seed: int):
    """Start the paced clients (processes) and return at once; `_collect_paced` waits for them."""
    ctx = mp.get_context("fork")
    queue, ready, go, began = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    procs = [
        ctx.Process(
            target=_paced_client,
            args=(port, token, seed + i, rate / clients, seconds, ready, go, began, queue),
        )
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    began.value = time.monotonic()
    go.set()
    return procs, queue, began.value


def _collect_paced(started):
    procs, queue, began = started
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    sending = time.monotonic() - began  # more than `seconds` when capture fell behind the pace
    statuses: dict[int, int] = {}
    lags = []
    for st, lag in results:
        lags.extend(lag)
        for code, count in st.items():
            statuses[code] = statuses.get(code, 0) + count
    return statuses, lags, sending


def _steady_state(engine, port: int, token: str, rate: float, seconds: float, clients: int) -> int:
    """Run the same load for `seconds` unmeasured, let it drain, ANALYZE; returns the last lead id.

    A database created a moment ago has empty tables and no statistics: the plans PostgreSQL makes
    then (and that the servers' prepared statements keep) are for tables of one page, and they
    slow down as the tables grow until autovacuum's first ANALYZE, within a minute or two of a
    live system's start. The target is about a clinic's system in operation, so it is measured
    after that point.
    """
    if seconds > 0:
        statuses, _, _ = _send_paced(port, token, rate, seconds, clients, seed=500)
        _wait(
            lambda: _tasks_made(engine) >= statuses.get(201, 0),
            timeout=300,
            what="warm-up tasks",
            interval=0.5,
        )
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE"))
        return conn.execute(sa.select(sa.func.coalesce(sa.func.max(Lead.id), 0))).scalar()


def capture_to_task(
    db_url: str,
    redis_url: str,
    token: str,
    rate: float,
    seconds: float,
    clients: int,
    concurrency: int,
    warm_up: float,
):
    env = {**os.environ, **server_env(db_url, redis_url)}
    port = free_port()
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with tempfile.TemporaryDirectory() as tmp, gunicorn("app:create_app()", env, port) as web:
        worker = _worker(
            env, "bench-automation", "realtime,notifications", concurrency, Path(tmp) / "worker.log"
        )
        try:
            time.sleep(3)  # the worker connects and starts consuming
            last_unmeasured = _steady_state(engine, port, token, rate, warm_up, clients)
            tasks_before = _tasks_made(engine)
            cpu_before = {"web": process_tree_cpu(web.pid), "worker": process_tree_cpu(worker.pid)}
            statuses, lags, sending = _send_paced(port, token, rate, seconds, clients, seed=100)
            captured = statuses.get(201, 0)
            _wait(
                lambda: _tasks_made(engine) >= tasks_before + captured,
                timeout=300,
                what="every initial call task",
                interval=0.5,
            )
            latencies = _latencies(engine, after_lead_id=last_unmeasured)
            cpu = {
                "web": process_tree_cpu(web.pid) - cpu_before["web"],
                "worker": process_tree_cpu(worker.pid) - cpu_before["worker"],
            }
        finally:
            _stop(worker)
            engine.dispose()
    return statuses, lags, latencies, sending, cpu


def _tasks_made(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(LeadTask)).scalar()


def _latencies(engine, after_lead_id: int, upto_lead_id: int | None = None) -> dict[str, list[float]]:
    """Per lead captured after `after_lead_id` (up to `upto_lead_id`): seconds to its first task and to
    its coordinator told."""
    measured = Lead.id > after_lead_id
    if upto_lead_id is not None:
        measured = sa.and_(measured, Lead.id <= upto_lead_id)
    with engine.connect() as conn:
        task_rows = conn.execute(
            sa.select(Lead.created_at, sa.func.min(LeadTask.created_at))
            .join(LeadTask, LeadTask.lead_id == Lead.id)
            .where(measured)
            .group_by(Lead.id, Lead.created_at)
        ).all()
        captured_at = dict(conn.execute(sa.select(Lead.id, Lead.created_at).where(measured)).all())
        told = conn.execute(
            sa.select(Notification.link, Notification.created_at).where(
                Notification.kind == "new_lead", Notification.channel == "in_app"
            )
        ).all()
    # A staff notification names its lead by link (/api/leads/<id>).
    told_ids = [(int(link.rsplit("/", 1)[1]), at) for link, at in told]
    told_rows = [(captured_at[lead_id], at) for lead_id, at in told_ids if lead_id in captured_at]
    as_seconds = lambda rows: [(clock.as_utc(b) - clock.as_utc(a)).total_seconds() for a, b in rows]  # noqa: E731
    first = min((clock.as_utc(a) for a, _ in task_rows), default=None)
    return {
        "task": as_seconds(task_rows),
        "told": as_seconds(told_rows),
        "timeline": _timeline(task_rows),
        "first_capture": first.timestamp() if first else 0.0,
    }


def _timeline(task_rows) -> list[tuple[float, float]]:
    """(seconds into the phase the lead was captured, seconds to its task), in capture order: where
    in a mode the late leads came (the first seconds of a fresh database, a sweep, the fire)."""
    if not task_rows:
        return []
    start = min(clock.as_utc(captured) for captured, _ in task_rows)
    return sorted(
        ((clock.as_utc(a) - start).total_seconds(), (clock.as_utc(b) - clock.as_utc(a)).total_seconds())
        for a, b in task_rows
    )


# --- part 2: the whole Procfile stack, on a database just migrated, warm, and under fire ----------

# cold: the first minute after a deploy. The load starts the moment /readyz first answers 200 (when a
# load balancer would send traffic), every process just started and the database just migrated.
# fresh: the same database, the load starting once every worker answers a ping.
MODES = ("cold", "fresh", "warm", "fire")
MODE_SEEDS = {"cold": 50, "fresh": 100, "warm": 200, "fire": 300}
KNEE_SEED = 1000  # a knee's phase at r leads/s: seed 1000 + r
NEW_LEAD_PATH = ("web", "worker", "database")  # the new lead's path: its CPU is issue 61's figure
TARGET_P99_MS = 100  # issue 20: capture's commit → the call task at 100 leads/s, in every mode
CAMPAIGN_BATCH = 1000
# How long the bench waits, after the load, for a mode's backlog (call tasks, the fire's work): a
# stack that cannot keep up shows as leads never served (infinitely late) rather than a bench that
# runs on for ever.
DRAIN_TIMEOUT = 120.0


@dataclass
class Phase:
    mode: str
    statuses: dict
    lags: list
    sending: float
    latencies: dict  # "task" / "told" → seconds per lead
    cpu: dict  # Procfile process type → CPU seconds during the phase
    fire: dict = field(default_factory=dict)  # under fire: what burned, how much, how long
    host: HostProbe | None = None  # the host's speed during the run (bench/host.py)
    started_at: float = 0.0  # epoch seconds: the phase's load began
    ended_at: float = 0.0

    @property
    def captured(self) -> int:
        return self.statuses.get(201, 0)

    def windows(self, width: float = 5.0) -> list[list]:
        """The speed to lead by `width` seconds of the phase: leads, p50, p99, max (ms), and the
        host's slowdown meanwhile."""
        by_window: dict[int, list[float]] = {}
        for offset, latency in self.latencies.get("timeline", []):
            by_window.setdefault(int(offset // width), []).append(latency)
        first = self.latencies.get("first_capture", 0.0)
        return [
            [
                self.mode,
                f"{i * width:g}-{(i + 1) * width:g}",
                len(lat),
                *(percentile(sorted(lat), q) * 1000 for q in (50, 99)),
                max(lat) * 1000,
                self.host_slowdown(first + i * width, first + (i + 1) * width),
            ]
            for i, lat in sorted(by_window.items())
        ]

    def host_slowdown(self, start: float | None = None, end: float | None = None) -> str:
        if self.host is None:
            return ""
        return shown(self.host.slowdown(start or self.started_at, end or self.ended_at))

    def p99_ms(self, what: str = "task") -> float:
        return percentile(self.latencies[what], 99) * 1000


@dataclass(frozen=True)
class Load:
    """A paced capture load: `rate` leads/s from `clients` client processes for `seconds` a mode,
    after `warm_up` seconds of the same, unmeasured (see `_make_warm`)."""

    rate: float
    seconds: float
    clients: int
    warm_up: float = 0.0


@dataclass(frozen=True)
class StackSetup:
    """What a whole-stack run stands on besides its database and Redis (always fresh)."""

    broker: str = "redis"  # Celery's: the bench's Redis, or "rabbitmq" (a virtual host of the run's own)
    relay_up: bool = True  # an SMTP relay takes the stack's email; False: its port is closed, sends fail
    keep_logs: str | None = None  # where to copy the processes' logs at the end (to see what ran when)


@dataclass
class PreparedStack:
    """A database the Procfile's release migrated and the bench's clinic seeded, and what the
    Procfile's processes start with: `procfile_stack(prepared.names, prepared.env, prepared.logs)`."""

    db_url: str
    redis_url: str
    broker: str  # "redis" or "rabbitmq"
    env: dict[str, str]  # the processes' (stack_env): PORT, DATABASE_URL, CELERY_BROKER_URL, SMTP_*
    logs: Path
    names: list[str]  # every Procfile process type but release and flower, web first
    token: str  # the clinic's front desk's: the leads' capture
    app: Flask  # the bench's own, on the same database and broker (seeding, worker pings, the fire)
    release_seconds: float

    @property
    def port(self) -> int:
        return int(self.env["PORT"])

    @property
    def dialect(self) -> str:
        return "PostgreSQL" if self.db_url.startswith("postgresql") else "SQLite"

    @property
    def described(self) -> str:
        """For a table's title: the processes, the database and the broker."""
        return f"{', '.join(self.names)}; {self.dialect}; broker {BROKER_NAMES[self.broker]}"


BROKER_NAMES = {"redis": "Redis", "rabbitmq": "RabbitMQ"}


@contextmanager
def prepared_stack(setup: StackSetup = StackSetup()):
    """Yields a `PreparedStack`: a fresh database (migrated by the Procfile's release), a Redis of the
    bench's own, the broker of `setup`, an SMTP relay (`_smtp_sink`) or a closed port where it would
    be. Should the block fail, prints the last lines of each process' log."""
    with ExitStack() as resources:
        tmp = resources.enter_context(tempfile.TemporaryDirectory())
        workdir = Path(tmp)
        db_url = resources.enter_context(bench_database(workdir))
        redis_url = resources.enter_context(bench_redis(workdir))
        broker_url = resources.enter_context(rabbitmq_vhost()) if setup.broker == "rabbitmq" else None
        # Down, the relay's port is one nothing listens on: each send is refused and retried later.
        smtp_port = resources.enter_context(_smtp_sink()) if setup.relay_up else free_port()
        env = stack_env(
            {
                **server_env(db_url, redis_url),
                **({"CELERY_BROKER_URL": broker_url} if broker_url else {}),
                "EMAIL_BACKEND": "smtp",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp_port),
                "FOLLOWUP_VAR_DIR": tmp,
            },
            workdir,
            free_port(),
        )
        logs = workdir / "logs"
        logs.mkdir()
        migrated = release(env, logs)
        token = _seed(db_url, redis_url)
        app = create_app(_settings(db_url, redis_url, broker_url))
        names = [n for n in procfile_processes() if n not in ("release", "flower")]
        names.sort(key=lambda n: n != "web")  # the web process first: it gets PORT
        try:
            yield PreparedStack(db_url, redis_url, setup.broker, env, logs, names, token, app, migrated)
        except Exception:
            for path in sorted(logs.glob("*.log")):
                print(f"\n  {path.name}, last lines:\n{_tail(path)}")
            raise
        finally:
            app.extensions["followup.db"].engine.dispose()
            if setup.keep_logs:  # the processes' own lines, to see what ran when a mode was late
                shutil.copytree(logs, setup.keep_logs, dirs_exist_ok=True)


def whole_stack(
    load: Load, modes: list[str], *, fire_size: int, setup: StackSetup = StackSetup()
) -> tuple[list[Phase], dict]:
    """Capture → call task under a steady arrival rate on the Procfile's processes (all but release
    and flower), after the Procfile's release migrated a fresh database: each mode of `modes` in turn
    on the same running stack. Returns the phases and what the run was (for the table's title)."""
    with prepared_stack(setup) as prepared:
        engine = sa.create_engine(prepared.db_url)
        phases: list[Phase] = []
        try:
            with host_probe() as probe, procfile_stack(prepared.names, prepared.env, prepared.logs) as stack:
                for mode in modes:
                    if mode == "cold":
                        _wait_ready(stack)
                    else:
                        _wait_workers(prepared.app, _worker_types(prepared.names))
                    if mode == "warm":
                        _make_warm(
                            engine,
                            stack.port,
                            prepared.token,
                            load.rate,
                            load.warm_up,
                            load.clients,
                            measured_before=bool(phases),
                        )
                    phase = _phase(
                        mode,
                        engine,
                        stack,
                        prepared.app,
                        prepared.token,
                        load.rate,
                        load.seconds,
                        load.clients,
                        fire_size,
                    )
                    phase.host = probe
                    phases.append(phase)
                made = _work_made(engine)
        finally:
            engine.dispose()
        run = {
            "dialect": prepared.dialect,
            "processes": prepared.names,
            "described": prepared.described,
            "release_seconds": prepared.release_seconds,
            "made": made,
        }
    return phases, run


def _work_made(engine) -> list[list]:
    """What the run made for each lead captured (all modes and warm-ups): ledger jobs by kind and
    events by type, each per lead: where a lead's work goes."""
    jobs = sa.text("SELECT kind, count(*) FROM scheduled_jobs GROUP BY kind")
    kinds = sa.text("SELECT type, count(*) FROM events GROUP BY type")
    with engine.connect() as conn:
        leads = max(conn.execute(sa.select(sa.func.count()).select_from(Lead)).scalar(), 1)
        rows = [["job", kind, n, n / leads] for kind, n in conn.execute(jobs)]
        rows += [["event", kind, n, n / leads] for kind, n in conn.execute(kinds)]
    return sorted(rows, key=lambda row: (row[0], -row[2]))


def _worker_types(names: list[str]) -> int:
    commands = procfile_processes()
    return sum(1 for n in names if {"celery", "worker"} <= set(shlex.split(commands[n])))


def knee_stack(load: Load, rates: list[float], setup: StackSetup = StackSetup()) -> tuple[list[Phase], dict]:
    """The warm stack (as `whole_stack`'s warm mode) loaded at each of `rates` in turn, `load.seconds`
    each, the phases named by their rate; the stack warmed once, at the first rate."""
    with prepared_stack(setup) as prepared:
        engine = sa.create_engine(prepared.db_url)
        phases: list[Phase] = []
        try:
            with host_probe() as probe, procfile_stack(prepared.names, prepared.env, prepared.logs) as stack:
                _wait_workers(prepared.app, _worker_types(prepared.names))
                _make_warm(engine, stack.port, prepared.token, rates[0], load.warm_up, load.clients, False)
                for rate in rates:
                    phase = _phase(
                        f"{rate:g}/s", engine, stack, prepared.app, prepared.token,
                        rate, load.seconds, load.clients, 0,
                    )  # fmt: skip
                    phase.host = probe
                    phases.append(phase)
        finally:
            engine.dispose()
        return phases, {"described": prepared.described, "processes": prepared.names}


def knee(p99_by_rate: list[tuple[float, float]], target_ms: float = TARGET_P99_MS) -> float | None:
    """The lowest rate (leads/s) whose p99 (ms) is over `target_ms`: where the stack stops keeping
    up; None if no rate tried crosses it."""
    return next((rate for rate, p99 in sorted(p99_by_rate) if p99 > target_ms), None)


def print_knee(phases: list[Phase], run: dict, rates: list[float], seconds: float) -> None:
    processes = [name for name in NEW_LEAD_PATH if name in [*run["processes"], "database"]]
    rows = []
    for rate, phase in zip(rates, phases, strict=True):
        task = phase.latencies["task"]
        per_lead = [phase.cpu.get(name, 0.0) / max(phase.captured, 1) * 1000 for name in processes]
        rows.append(
            [
                rate,
                phase.captured / phase.sending,
                len(task),
                *(percentile(task, p) * 1000 for p in (50, 99)),
                max(task, default=0) * 1000,
                *per_lead,
                sum(per_lead),
                phase.host_slowdown(),
            ]
        )
    print_table(
        f"The knee on the whole Procfile stack ({run['described']}): speed to lead at each rate, "
        f"{seconds:g} s each, warm",
        [
            "leads/s asked",
            "achieved",
            "leads",
            "p50 ms",
            "p99 ms",
            "max ms",
            *(f"CPU/lead {name} ms" for name in processes),
            "CPU/lead new lead's path ms",
            "host slowdown p50 / p90",
        ],
        rows,
    )
    crossed = knee([(rate, phase.p99_ms()) for rate, phase in zip(rates, phases, strict=True)])
    if crossed is None:
        highest = max(rates)
        print(f"\n  knee: p99 stayed within {TARGET_P99_MS} ms up to {highest:g} leads/s (the highest tried)")
    else:
        below = [rate for rate in rates if rate < crossed]
        after = f", above {max(below):g}" if below else " (the lowest tried)"
        print(f"\n  knee: p99 crosses {TARGET_P99_MS} ms at {crossed:g} leads/s{after}")
    print(typical(phases[0].host if phases else None))


def _wait_ready(stack) -> None:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/readyz", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    _wait(ready, 90, "/readyz", 0.05)


def _wait_workers(app, count: int) -> None:
    sender = app.extensions["followup.dispatcher"].celery
    _wait(lambda: len(sender.control.ping(timeout=1.0) or []) >= count, 90, "the Procfile's workers", 0.2)


def _make_warm(engine, port, token, rate, warm_up, clients, measured_before: bool) -> None:
    """A system in operation: the same load unmeasured first (unless a mode ran already), then ANALYZE."""
    if not measured_before and warm_up > 0:
        before = _max_lead_id(engine)
        statuses, _, _ = _send_paced(port, token, rate, warm_up, clients, seed=500)
        _wait_tasks(engine, before, _max_lead_id(engine), statuses.get(201, 0))
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()


def _phase(mode, engine, stack, app, token, rate, seconds, clients, fire_size) -> Phase:
    seed = MODE_SEEDS.get(mode, KNEE_SEED + int(rate))  # fresh families for each phase of a run
    fire = _prepare_fire(app, fire_size) if mode == "fire" else None
    before = _max_lead_id(engine)  # the leads captured from here on are measured
    cpu_before = {**stack.cpu_seconds(), "database": database_cpu(engine.url)}
    paced = _start_paced(stack.port, token, rate, seconds, clients, seed=seed)
    started_at = time.time()
    if fire:
        time.sleep(min(1.0, seconds / 10))  # the realtime work is flowing when the fire starts
        _light(fire, app, stack.port)
    statuses, lags, sending = _collect_paced(paced)
    ended_at = time.time()
    stack.check()
    upto = _max_lead_id(engine)
    missing = _wait_tasks(engine, before, upto, statuses.get(201, 0))
    _wait_background(engine)
    cpu_after = {**stack.cpu_seconds(), "database": database_cpu(engine.url)}
    latencies = _latencies(engine, after_lead_id=before, upto_lead_id=upto)
    latencies["task"] += [math.inf] * missing  # never made within the wait: later than any figure
    phase = Phase(
        mode,
        statuses,
        lags,
        sending,
        latencies,
        {name: cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0) for name in cpu_after},
        started_at=started_at,
        ended_at=ended_at,
    )
    if fire:
        phase.fire = _burned(fire, app, engine, before, upto)
    return phase


def _max_lead_id(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.coalesce(sa.func.max(Lead.id), 0))).scalar()


def _wait_tasks(engine, after: int, upto: int, captured: int, timeout: float | None = None) -> int:
    """Until every lead captured in (after, upto] has its initial call task, or `timeout`; returns how
    many are still without one (a backlog the stack could not clear in time)."""

    def missing() -> int:
        with engine.connect() as conn:
            with_task = conn.execute(
                sa.select(sa.func.count(sa.distinct(LeadTask.lead_id))).where(
                    LeadTask.lead_id > after, LeadTask.lead_id <= upto
                )
            ).scalar()
        return max(0, captured - with_task)

    deadline = time.monotonic() + (DRAIN_TIMEOUT if timeout is None else timeout)
    while (left := missing()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def _wait_background(engine, timeout: float = DRAIN_TIMEOUT) -> None:
    """Until no ledger row due within seconds is open (the leads' re-scoring on the background
    worker, due a moment after their events, done too), or `timeout`: the CPU a lead costs counts
    all the work it causes, not the part done so far."""
    due_open = sa.text(
        "SELECT count(*) FROM scheduled_jobs WHERE status IN ('pending', 'dispatched') "
        "AND due_at <= now() + interval '10 seconds'"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.execute(due_open).scalar():
                return
        time.sleep(0.5)


# Under fire: a bulk action over `fire_size` leads of another clinic and a campaign of `fire_size`
# emails to the local SMTP server, started while the leads keep arriving.


def _prepare_fire(app, size: int) -> dict:
    from bench.bulk import _seed as seed_bulk_clinic

    clinic_id, admin_id, _ = seed_bulk_clinic(app, size)
    token = tokens.issue(
        secret=SECRET,
        grant=tokens.TokenGrant(
            user_id=admin_id, clinic_id=clinic_id, kind="access", lifetime=timedelta(hours=2)
        ),
        now=clock.now(),
    )
    return {"size": size, "clinic_id": clinic_id, "token": token, "prefix": f"campaign:{time.time_ns()}"}


def _light(fire: dict, app, port: int) -> None:
    """Start the bulk action through the web process, then queue the campaign as the product does."""
    fire["started"] = clock.now()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            "POST",
            "/api/leads/tasks/bulk",
            body=json.dumps(
                {
                    "filter": {"source_campaign": "spring-expo"},
                    "title": "Thanks for visiting",
                    "type": "CALL",
                    "due_in_minutes": 1440,
                    "assignee_policy": "round_robin",
                }
            ),
            headers={"Authorization": f"Bearer {fire['token']}", "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        answer = json.loads(resp.read())
    finally:
        conn.close()
    if resp.status != 202:
        raise RuntimeError(f"the bulk action was refused: {resp.status} {answer}")
    fire["bulk_id"] = answer["id"]
    db = app.extensions["followup.db"]
    for start in range(0, fire["size"], CAMPAIGN_BATCH):
        with db.unit_of_work() as session:
            notifications.queue_many(
                session=session,
                channel="email",
                messages=[
                    {
                        "clinic_id": fire["clinic_id"],
                        "to_address": f"patient{i}@example.com",
                        "template": "lead_message",
                        "context": {"subject": f"Spring offer ({i})", "body": "See you on Tuesday."},
                        "dedupe_key": f"{fire['prefix']}:{i}",
                    }
                    for i in range(start, min(fire["size"], start + CAMPAIGN_BATCH))
                ],
                now=clock.now(),
            )


def _burned(fire: dict, app, engine, after: int, upto: int) -> dict:
    """Wait for the bulk tasks and the campaign's emails; how long each took from the start of the fire,
    and the speed-to-lead of the leads captured while either still burned."""
    bulk_like, mail_like = f"bulk:{fire['bulk_id']}:%", f"{fire['prefix']}:%"

    def counts():
        with engine.connect() as conn:
            tasks = conn.execute(
                sa.select(sa.func.count(), sa.func.max(LeadTask.created_at)).where(
                    LeadTask.dedupe_key.like(bulk_like)
                )
            ).one()
            sent = conn.execute(
                sa.select(sa.func.count(), sa.func.max(Notification.sent_at)).where(
                    Notification.dedupe_key.like(mail_like), Notification.status == "sent"
                )
            ).one()
        return tasks, sent

    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        (tasks, _), (sent, _) = counts()
        if tasks >= fire["size"] and sent >= fire["size"]:
            break
        time.sleep(1.0)
    (tasks, bulk_end), (sent, mail_end) = counts()
    started = clock.as_utc(fire["started"])
    # Unfinished within the wait: it burned at least until now.
    bulk_end = clock.as_utc(bulk_end) if tasks >= fire["size"] else clock.now()
    mail_end = clock.as_utc(mail_end) if sent >= fire["size"] else clock.now()
    ended = max(bulk_end, mail_end)
    with engine.connect() as conn:
        burning_upto = conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(Lead.id), after)).where(
                Lead.id > after, Lead.id <= upto, Lead.created_at <= ended
            )
        ).scalar()
    return {
        "size": fire["size"],
        "bulk tasks": tasks,
        "bulk seconds": (bulk_end - started).total_seconds(),
        "emails sent": sent,
        "campaign seconds": (mail_end - started).total_seconds(),
        "while burning": _served_or_not(engine, after, burning_upto),
    }


def _served_or_not(engine, after: int, upto: int) -> list[float]:
    """Seconds to the call task of each lead captured in (after, upto]; a lead still without one
    counts as infinitely late."""
    served = _latencies(engine, after_lead_id=after, upto_lead_id=upto)["task"]
    with engine.connect() as conn:
        captured = conn.execute(
            sa.select(sa.func.count()).select_from(Lead).where(Lead.id > after, Lead.id <= upto)
        ).scalar()
    return served + [math.inf] * max(0, captured - len(served))


@contextmanager
def _smtp_sink():
    """A local SMTP server (aiosmtpd, in its own process) that accepts and drops every message.

    It stands for the clinic's email provider, which runs on machines of its own: here it shares
    the stack's cores, and receiving a campaign took 70-75% of one. Niced, it takes what the stack
    leaves instead of taking turns with the stack's own processes."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
        start_new_session=True,
        preexec_fn=lambda: os.nice(SMTP_NICENESS),
    )
    try:
        _wait(lambda: _accepts(port), timeout=30, what="the SMTP server", interval=0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stack_rows(phases: list[Phase], processes: list[str]) -> list[list]:
    rows = []
    for phase in phases:
        task = phase.latencies["task"]
        rows.append(
            [
                phase.mode,
                len(task),
                *(percentile(task, p) * 1000 for p in (50, 95, 99)),
                max(task, default=0) * 1000,
                phase.p99_ms("told"),
                *(phase.cpu.get(name, 0.0) / max(phase.captured, 1) * 1000 for name in processes),
                f"<= {TARGET_P99_MS}",
                phase.host_slowdown(),
            ]
        )
        if phase.fire:
            burning = phase.fire["while burning"]
            rows.append(
                [
                    "fire: while it burned",
                    len(burning),
                    *(percentile(burning, p) * 1000 for p in (50, 95, 99)),
                    max(burning, default=0) * 1000,
                    "",
                    *("" for _ in processes),
                    f"<= {TARGET_P99_MS}",
                    "",
                ]
            )
    return rows


def main(flags: list[str]) -> None:
    n_rules, evaluations = int(_flag(flags, "rules", 50)), int(_flag(flags, "evaluations", 2000))
    rate, seconds = _flag(flags, "rate", 100), _flag(flags, "seconds", 60)
    clients, warm_up = int(_flag(flags, "clients", 8)), _flag(flags, "warm-up", 10)
    fire_size = int(_flag(flags, "fire", 10_000))
    modes = _modes(flags)
    setup = StackSetup(broker=broker_flag(flags), keep_logs=text_flag(flags, "logs"))
    if "--skip-rules" not in flags:
        with (
            tempfile.TemporaryDirectory() as tmp,
            bench_database(Path(tmp)) as db_url,
            bench_redis(Path(tmp)) as redis_url,
        ):
            migrate.upgrade(db_url)
            _seed(db_url, redis_url)
            dialect = "PostgreSQL" if db_url.startswith("postgresql") else "SQLite"
            print_table(
                f"Rule evaluation against one activity.logged event ({dialect})",
                ["what", "runs", "p50 ms", "p95 ms", "p99 ms"],
                rule_evaluation(db_url, redis_url, n_rules, evaluations),
            )
    if "--skip-load" in flags:
        return
    rates = knee_flag(flags)
    if rates:
        phases, run = knee_stack(Load(rates[0], seconds, clients, warm_up), rates, setup=setup)
        print_knee(phases, run, rates, seconds)
        return
    phases, run = whole_stack(Load(rate, seconds, clients, warm_up), modes, fire_size=fire_size, setup=setup)
    print_stack(phases, run, rate, seconds, window=_flag(flags, "window", 5.0))


def text_flag(flags: list[str], name: str) -> str | None:
    return next((f.split("=", 1)[1] for f in flags if f.startswith(f"--{name}=")), None)


def knee_flag(flags: list[str]) -> list[float]:
    """--knee=20,40,60: the rates, ascending; none without the flag."""
    given = text_flag(flags, "knee")
    if given is None:
        return []
    try:
        rates = sorted({float(rate) for rate in given.split(",") if rate})
    except ValueError:
        raise SystemExit(f"--knee: {given!r}; use leads/s rates separated by commas, e.g. 20,40,60") from None
    if not rates or rates[0] <= 0:
        raise SystemExit(f"--knee: {given!r}; use positive leads/s rates, e.g. 20,40,60")
    return rates


def broker_flag(flags: list[str]) -> str:
    """--broker=redis (the default) or rabbitmq."""
    broker = text_flag(flags, "broker") or "redis"
    if broker not in BROKER_NAMES:
        raise SystemExit(f"--broker: {broker!r}; use {' or '.join(BROKER_NAMES)}")
    return broker


def _modes(flags: list[str]) -> list[str]:
    for flag in flags:
        if flag.startswith("--modes="):
            modes = [m for m in flag.split("=", 1)[1].split(",") if m]
            unknown = set(modes) - set(MODES)
            if unknown:
                raise SystemExit(f"--modes: unknown {sorted(unknown)}; use {','.join(MODES)}")
            if "cold" in modes[1:]:
                raise SystemExit("--modes: cold is the first minute of a new stack, so it comes first")
            return modes
    return [mode for mode in MODES if mode != "cold"]


def print_stack(phases: list[Phase], run: dict, rate: float, seconds: float, window: float = 5.0) -> None:
    print_table(
        f"Speed to lead on the whole Procfile stack ({run['described']}): "
        f"capture's commit → the initial call task at {rate:g} leads/s, {seconds:g} s a mode",
        [
            "mode",
            "leads",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "told p99 ms",
            *(f"CPU/lead {name} ms" for name in [*run["processes"], "database"]),
            "target p99 ms",
            "host slowdown p50 / p90",
        ],
        stack_rows(phases, [*run["processes"], "database"]),
    )
    print_table(
        f"Speed to lead by {window:g} s of each mode (where the late leads came)",
        ["mode", "seconds", "leads", "p50 ms", "p99 ms", "max ms", "host slowdown p50 / p90"],
        [row for phase in phases for row in phase.windows(window)],
    )
    print_table(
        "What a lead made (every mode, warm-ups included)", ["what", "kind", "rows", "a lead"], run["made"]
    )
    print(
        "\n  cold: the load began the moment /readyz first answered 200 after every process started; "
        "fresh: the Procfile's release migrated the database moments before (no warm-up, no ANALYZE by "
        f"the bench; release took {run['release_seconds']:.1f} s); warm: after the fresh mode's load (or "
        "--warm-up seconds of it) and an ANALYZE; fire: warm, while a bulk action and an email campaign run"
    )
    print(typical(phases[0].host if phases else None))
    for phase in phases:
        late = sorted(phase.lags)
        print(
            f"  {phase.mode}: captured {phase.captured} of {sum(phase.statuses.values())} "
            f"(statuses {phase.statuses}), {phase.captured / phase.sending:.1f} leads/s achieved, "
            f"sender lag p99 {percentile(late, 99) * 1000:.0f} ms"
        )
        if phase.fire:
            fire = phase.fire
            print(
                f"  fire: {fire['bulk tasks']:,} of {fire['size']:,} bulk tasks made in "
                f"{fire['bulk seconds']:.1f} s, {fire['emails sent']:,} of {fire['size']:,} emails sent in "
                f"{fire['campaign seconds']:.1f} s (from its start; if unfinished, until the wait ended)"
            )
