"""Automation: rule evaluation cost, and capture → initial call task + coordinator told, under load.

`make bench BENCH_ARGS=automation` (SQLite) or with DATABASE_URL=postgresql://... Flags:
--rules=50, --evaluations=2000 (part 1); --rate=100 (leads/s), --seconds=60, --clients=8,
--concurrency=2 (worker processes on the realtime queue), --warm-up=10 (seconds of the same load,
unmeasured, then ANALYZE: see `_steady_state`) (part 2); --skip-load for part 1 only.
Targets (issue 5): 50 active rules against one event, p99 <= 2 ms; capture → the initial call task
in my-tasks and the coordinator notified, p99 <= 1 s with 100 leads/s arriving for 60 s.

Part 2 times each lead from its `created_at` (the capture transaction's clock) to the
`created_at` of its task and of the coordinator's notification (the worker's clock, same host),
both written in the job's one transaction: visible the moment it commits.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import psutil
import sqlalchemy as sa

from app import clock, create_app, migrate
from app.auth.models import Clinic
from app.auth.roles import Actor
from app.automation import processing, rule_context
from app.automation import rules as rule_language
from app.automation.models import AutomationRule
from app.config import Settings
from app.devtools.local_redis import free_port
from app.events.models import DomainEvent
from app.intake import service as intake
from app.leads.models import Lead
from app.notifications.models import Notification
from app.tasks.models import LeadTask
from bench.bulk import _stop, _wait, _worker
from bench.common import bench_database, bench_redis, percentile, print_table
from bench.http_load import WEB_THREADS, gunicorn
from bench.leads_write import PHI_KEY, SECRET, _flag, _seed, lead_body, server_env

OUTCOMES = ("spoke", "no_answer", "voicemail", "callback_requested", "wrong_number")


def _settings(db_url: str, redis_url: str) -> Settings:
    return Settings(database_url=db_url, redis_url=redis_url, secret_key=SECRET, phi_encryption_key=PHI_KEY)


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
    now = clock.now()
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        clinic_id = _first_clinic(session)
        existing = len(
            processing.active_rules(session=session, clinic_id=clinic_id, trigger="activity.logged")
        )
        _extra_rules(session, clinic_id, n_rules - existing, now)
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        lead = _a_lead(session, clinic_id, now)
        rules = processing.active_rules(session=session, clinic_id=clinic_id, trigger="activity.logged")
        event = DomainEvent(
            id=0,
            clinic_id=clinic_id,
            type="activity.logged",
            subject_type="lead",
            subject_id=lead.id,
            payload={"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "no_answer"},
            occurred_at=now,
        )
        pure, whole = [], []
        for _ in range(evaluations):
            context = rule_context.build_context(
                session=session, lead=lead, event_type=event.type, payload=event.payload, at=now
            )
            started = time.perf_counter()
            for rule in rules:
                if rule_language.matches(rule.compiled, context):
                    rule_language.evaluate(rule.conditions, context)
            pure.append(time.perf_counter() - started)
            started = time.perf_counter()
            processing.matching_rules(session=session, event=event, lead=lead)
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
    return intake.create_lead(session=session, actor=actor, data=data, reject_duplicates=False, now=now).lead


# --- part 2: capture under a steady arrival rate ---------------------------------------------------


def _paced_client(port, token, seed, rate, stop_at, queue):
    """Open loop: send at a fixed pace whatever the answers' speed (a late request goes at once)."""
    interval, n, statuses, lags = 1.0 / rate, 0, {}, []
    start = time.monotonic() + (seed % 10) * interval / 10
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
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    began = time.monotonic()
    stop_at = began + seconds
    procs = [
        ctx.Process(target=_paced_client, args=(port, token, seed + i, rate / clients, stop_at, queue))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
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
            cpu_before = {"web": _cpu_seconds(web.pid), "worker": _cpu_seconds(worker.pid)}
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
                "web": _cpu_seconds(web.pid) - cpu_before["web"],
                "worker": _cpu_seconds(worker.pid) - cpu_before["worker"],
            }
        finally:
            _stop(worker)
            engine.dispose()
    return statuses, lags, latencies, sending, cpu


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn's or Celery's workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _tasks_made(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(LeadTask)).scalar()


def _latencies(engine, after_lead_id: int) -> dict[str, list[float]]:
    """Per lead captured after `after_lead_id`: seconds to its first task and to its coordinator told."""
    measured = Lead.id > after_lead_id
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
    return {"task": as_seconds(task_rows), "told": as_seconds(told_rows)}


def main(flags: list[str]) -> None:
    n_rules, evaluations = int(_flag(flags, "rules", 50)), int(_flag(flags, "evaluations", 2000))
    rate, seconds = _flag(flags, "rate", 100), _flag(flags, "seconds", 60)
    clients, concurrency = int(_flag(flags, "clients", 8)), int(_flag(flags, "concurrency", 2))
    warm_up = _flag(flags, "warm-up", 10)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(Path(tmp)) as db_url,
        bench_redis(Path(tmp)) as redis_url,
    ):
        migrate.upgrade(db_url)
        token = _seed(db_url, redis_url)
        dialect = "PostgreSQL" if db_url.startswith("postgresql") else "SQLite"
        print_table(
            f"Rule evaluation against one activity.logged event ({dialect})",
            ["what", "runs", "p50 ms", "p95 ms", "p99 ms"],
            rule_evaluation(db_url, redis_url, n_rules, evaluations),
        )
        if "--skip-load" in flags:
            return
        statuses, lags, latencies, sending, cpu = capture_to_task(
            db_url, redis_url, token, rate, seconds, clients, concurrency, warm_up
        )
    captured = statuses.get(201, 0)
    rows = [
        [
            what,
            len(values),
            *(percentile(values, p) * 1000 for p in (50, 95, 99)),
            max(values, default=0) * 1000,
        ]
        for what, values in (
            ("initial call task", latencies["task"]),
            ("coordinator told", latencies["told"]),
        )
    ]
    print_table(
        f"Capture → automation at {rate:g} leads/s for {seconds:g} s ({dialect}, gunicorn 2 workers "
        f"x {WEB_THREADS} threads, worker concurrency {concurrency}; after {warm_up:g} s of it unmeasured "
        "and ANALYZE)",
        ["from capture to", "leads", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        rows,
    )
    late = sorted(lags)
    print(
        f"\n  captured: {captured} of {sum(statuses.values())} sent (statuses {statuses}); "
        f"in {sending:.1f} s: {captured / sending:.1f} leads/s achieved; CPU per lead: capture (gunicorn) "
        f"{cpu['web'] / max(captured, 1) * 1000:.1f} ms, automation (Celery worker) "
        f"{cpu['worker'] / max(captured, 1) * 1000:.1f} ms; sender lag p99 "
        f"{percentile(late, 99) * 1000:.0f} ms (how far behind the pace the clients fell: large when "
        "capture could not keep up)"
    )
