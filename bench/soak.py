"""Soak: 15 minutes at 20 leads/s, no lead contacted, with the email relay up and with it down.

`make bench BENCH_ARGS="soak"` with DATABASE_URL=postgresql://... Flags: --minutes=15, --rate=20
(leads/s), --clients=4 (paced client processes), --relay=both (up, down, or both: one run after
the other, each on a fresh stack and database), --sla-minutes=1, --broker=redis|rabbitmq,
--logs=DIR (each run's process logs in DIR/relay-up, DIR/relay-down), --every=SECONDS (also a
table of speed to lead by window of that many seconds: a stall shows when it was, to set beside the
process logs' sweeps).
Target: every minute's speed-to-lead p99 <= 100 ms and the workers' memory flat after warm-up, the
same with the email relay down (its retries never slow the realtime lane).

Each run is `bench automation`'s whole stack (`automation.prepared_stack`): the Procfile's release
on a fresh database, then every Procfile process but release and flower, its email going to a local
SMTP relay (`automation._smtp_sink`, a niced process of its own) or, relay down, to a port nothing
listens on: every send is refused and retried. Leads are captured through the API at a steady
pace (`automation._start_paced`) and nobody calls them, so each one's lifecycle runs to its end:
its speed-to-lead SLA clock warns its owner (an email) and breaches (an email to the clinic admin),
its "Initial contact" call task goes overdue (an email to its assignee), and the hourly overdue
digests follow.

By default a clinic's SLA is 5 business minutes and its hours 8 to 17 on weekdays, so how much of
that work a run sees would depend on its length and on the hour it runs at. The bench therefore
sets the clinic up first, through the API as a clinic admin it adds to the seeded clinic (the seed
has none, and breaches are escalated to admins): open every day from 00:00 to 24:00 (PUT
/api/clinic: never closed), the speed-to-lead SLA of
`--sla-minutes` (warning at 80%), and the "Initial contact" rule's call task due `--sla-minutes`
after capture (PATCH /api/follow-up-rules/:id). With the default of 1, every lead's warning,
breach and overdue work falls within two minutes of its capture: by minute 3 (where memory growth
is counted from) the stack is at its steady state.

Each minute: speed to lead (capture's commit → the call task's, as `automation._latencies`) p50,
p99 and max of the leads captured that minute (a lead still without its task when the drain ends,
"no task", counts as infinitely late), the host's slowdown meanwhile (bench/host.py), and each
Procfile process type's RSS (the program and its children) at the minute's end; row 0 is the RSS
as the load began.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa

from app.domains.auth import tokens
from app.domains.auth.models import Clinic, User
from app.domains.auth.service import hash_password
from app.domains.business_hours.rules import WEEKDAYS
from app.domains.leads.models import Lead
from app.domains.tasks.models import LeadTask
from app.platform import clock
from app.platform.roles import Role
from bench.automation import (
    PreparedStack,
    StackSetup,
    _collect_paced,
    _max_lead_id,
    _start_paced,
    _wait_tasks,
    _wait_workers,
    _worker_types,
    broker_flag,
    prepared_stack,
    text_flag,
)
from bench.common import percentile, print_table
from bench.fairness import Api
from bench.host import HostProbe, host_probe, shown, typical
from bench.leads_write import SECRET, _flag
from bench.stack import Stack, procfile_stack

RELAYS = ("up", "down")
TARGET_P99_MS = 100  # the soak's target: every minute's speed-to-lead p99
WARM_UP_MINUTES = 3  # memory growth is counted from the end of this minute
OPEN_ALL_DAY = ["00:00", "24:00"]  # to the midnight that ends the day
MB = 1024 * 1024


@dataclass(frozen=True)
class Soak:
    rate: float = 20.0
    minutes: int = 15
    clients: int = 4
    sla_minutes: int = 1  # the SLA target and the call task's delay (see the module's docstring)
    broker: str = "redis"
    keep_logs: str | None = None
    every: int | None = None  # seconds a window of the second table lasts (None: no such table)


@dataclass
class SoakRun:
    relay: str  # "up" or "down"
    described: str  # the stack: its processes, database and broker
    started_at: float = 0.0  # epoch seconds: the load began
    # RSS (bytes) by process type: as the load began, then at each minute's end.
    memory: list[dict[str, int]] = field(default_factory=list)
    latencies: dict[int, list[float]] = field(default_factory=dict)  # minute (1-based) → seconds to the task
    windows: dict[int, list[float]] = field(default_factory=dict)  # the same by `Soak.every` seconds
    statuses: dict = field(default_factory=dict)
    lags: list = field(default_factory=list)
    sending: float = 0.0
    made: dict[str, dict[str, int]] = field(default_factory=dict)  # what → status → rows
    host: HostProbe | None = None

    @property
    def processes(self) -> list[str]:
        return list(self.memory[0]) if self.memory else []

    def p99_ms(self, minute: int) -> float:
        return percentile(self.latencies.get(minute, []), 99) * 1000


def main(flags: list[str]) -> None:
    if not _on_postgresql():
        print("  skipped: the whole stack runs on PostgreSQL here (set DATABASE_URL=postgresql://...)")
        return
    soak = Soak(
        rate=_flag(flags, "rate", 20.0),
        minutes=int(_flag(flags, "minutes", 15)),
        clients=int(_flag(flags, "clients", 4)),
        sla_minutes=int(_flag(flags, "sla-minutes", 1)),
        broker=broker_flag(flags),
        keep_logs=text_flag(flags, "logs"),
        every=int(_flag(flags, "every", 0)) or None,
    )
    relay = text_flag(flags, "relay") or "both"
    if relay not in (*RELAYS, "both"):
        raise SystemExit(f"--relay: {relay!r}; use up, down or both")
    for each in RELAYS if relay == "both" else (relay,):
        print_run(soak, soak_run(soak, each))


def _on_postgresql() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith("postgres")


def soak_run(soak: Soak, relay: str) -> SoakRun:
    """One run on a fresh stack: the clinic set up, `soak.minutes` of paced capture sampled each
    minute, the drain of the call tasks, then the leads' latencies and what their lifecycle made."""
    setup = StackSetup(
        broker=soak.broker,
        relay_up=relay == "up",
        keep_logs=f"{soak.keep_logs}/relay-{relay}" if soak.keep_logs else None,
    )
    with prepared_stack(setup) as prepared:
        run = SoakRun(relay, prepared.described)
        engine = sa.create_engine(prepared.db_url)
        try:
            with host_probe() as probe, procfile_stack(prepared.names, prepared.env, prepared.logs) as stack:
                run.host = probe
                _wait_workers(prepared.app, _worker_types(prepared.names))
                set_up_clinic(prepared, soak.sla_minutes)
                _load(run, soak, stack, prepared.token)
                captured = run.statuses.get(201, 0)
                _wait_tasks(engine, 0, _max_lead_id(engine), captured)
                run.latencies = latencies_by_window(engine, run.started_at, 60, soak.minutes)
                if soak.every:
                    windows = math.ceil(soak.minutes * 60 / soak.every)
                    run.windows = latencies_by_window(engine, run.started_at, soak.every, windows)
                run.made = lifecycle_made(engine)
        finally:
            engine.dispose()
    return run


def _load(run: SoakRun, soak: Soak, stack: Stack, token: str) -> None:
    """The paced capture for `soak.minutes`, each process type's RSS at each minute's end."""
    paced = _start_paced(stack.port, token, soak.rate, soak.minutes * 60, soak.clients, seed=1000)
    began = paced[2]  # time.monotonic() when the clients started sending
    run.started_at = time.time() - (time.monotonic() - began)
    run.memory.append(stack.memory())
    for minute in range(1, soak.minutes + 1):
        while (left := began + minute * 60 - time.monotonic()) > 0:
            stack.check()  # a process that died (out of memory, say) ends the run at once
            time.sleep(min(1.0, left))
        run.memory.append(stack.memory())
        rss = ", ".join(f"{name} {size / MB:,.0f}" for name, size in run.memory[-1].items())
        print(f"  relay {run.relay}: minute {minute} of {soak.minutes}; RSS MB: {rss}", flush=True)
    run.statuses, run.lags, run.sending = _collect_paced(paced)


def _clinic_admin_token(prepared: PreparedStack) -> str:
    """A clinic admin in the seeded clinic (which has none): who sets the clinic up through the API,
    and whom every breach is escalated to."""
    app, now = prepared.app, clock.now()
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        clinic_id = session.scalar(sa.select(Clinic.id).order_by(Clinic.id).limit(1))
        admin = User(
            clinic_id=clinic_id,
            email="bench-admin@example.com",
            name="bench admin",
            role=Role.CLINIC_ADMIN,
            password_hash=hash_password("bench password"),
            active=True,
            out_of_office=False,
            created_at=now,
            updated_at=now,
        )
        session.add(admin)
        session.flush()
        grant = tokens.TokenGrant(
            user_id=admin.id, clinic_id=clinic_id, kind="access", lifetime=timedelta(hours=2)
        )
        return tokens.issue(secret=SECRET, grant=grant, now=now)


def set_up_clinic(prepared: PreparedStack, sla_minutes: int) -> None:
    """Through the API, as the clinic's admin: open all day every day, the speed-to-lead SLA and the
    "Initial contact" call task's delay both `sla_minutes` (the module's docstring says why)."""
    admin = Api(prepared.port, _clinic_admin_token(prepared))
    try:
        admin.call(
            "PUT",
            "/api/clinic",
            {
                "business_hours": dict.fromkeys(WEEKDAYS, OPEN_ALL_DAY),
                "settings": {"sla": {"speed_to_lead_minutes": sla_minutes}},
            },
        )
        rules = admin.call("GET", "/api/follow-up-rules")
        rule = next(r for r in rules if r["default_key"] == "speed_to_lead")
        delay = {"amount": sla_minutes, "unit": "business_minutes"}
        actions = [{**a, "delay": delay} if a["type"] == "create_task" else a for a in rule["actions"]]
        admin.call("PATCH", f"/api/follow-up-rules/{rule['id']}", {"actions": actions})
    finally:
        admin.close()


def latencies_by_window(engine, started_at: float, seconds: int, windows: int) -> dict[int, list[float]]:
    """Seconds from each lead's capture to its first task (inf: none yet), by the window of the load
    it was captured in (1-based, each `seconds` long: 60 for the minutes; a request sent late and
    captured after the last window counts in the last). The database is the run's own: every lead
    in it is the load's."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Lead.created_at, sa.func.min(LeadTask.created_at))
            .outerjoin(LeadTask, LeadTask.lead_id == Lead.id)
            .group_by(Lead.id, Lead.created_at)
        ).all()
    by_window: dict[int, list[float]] = {window: [] for window in range(1, windows + 1)}
    for captured, tasked in rows:
        captured = clock.as_utc(captured)
        window = min(windows, max(1, int((captured.timestamp() - started_at) // seconds) + 1))
        seconds_late = math.inf if tasked is None else (clock.as_utc(tasked) - captured).total_seconds()
        by_window[window].append(seconds_late)
    return by_window


def lifecycle_made(engine) -> dict[str, dict[str, int]]:
    """What the leads' lifecycle made by the end, by status: the speed-to-lead SLA clocks, the call
    tasks, the staff emails (and their send attempts, failed ones included)."""
    emails = "FROM notifications WHERE channel = 'email'"
    counts = {
        "SLA clocks": "SELECT status, count(*) FROM sla_clocks WHERE kind = 'speed_to_lead' GROUP BY status",
        "call tasks": "SELECT status, count(*) FROM lead_tasks GROUP BY status",
        "staff emails": f"SELECT status, count(*) {emails} GROUP BY status",
        "email attempts": f"SELECT 'made', coalesce(sum(attempts), 0) {emails}",
    }
    with engine.connect() as conn:
        return {what: dict(conn.execute(sa.text(query)).all()) for what, query in counts.items()}


# --- the tables -----------------------------------------------------------------------------------


def minute_rows(run: SoakRun) -> list[list]:
    processes = run.processes
    rows = [["0", "", "", "", "", "", "", *(run.memory[0][name] / MB for name in processes)]]
    for minute, sizes in enumerate(run.memory[1:], start=1):
        latencies = run.latencies.get(minute, [])
        start = run.started_at + (minute - 1) * 60
        slowdown = shown(run.host.slowdown(start, start + 60)) if run.host else ""
        rows.append(
            [
                str(minute),
                len(latencies),
                sum(1 for seconds in latencies if math.isinf(seconds)),
                *latency_columns(latencies),
                slowdown,
                *(sizes.get(name, 0) / MB for name in processes),
            ]
        )
    return rows


def window_rows(run: SoakRun, every: int) -> list[list]:
    rows = []
    for window, latencies in sorted(run.windows.items()):
        start = (window - 1) * every
        rows.append([f"{start}-{start + every}", len(latencies), *latency_columns(latencies)])
    return rows


def latency_columns(latencies: list[float]) -> list[float]:
    """p50, p99 and max in milliseconds, as both speed-to-lead tables show them."""
    return [
        *(percentile(latencies, p) * 1000 for p in (50, 99)),
        max(latencies, default=math.nan) * 1000,
    ]


def summary(run: SoakRun) -> str:
    """The worst minute's p99 against the target, and each process type's RSS growth after warm-up."""
    minutes = sorted(run.latencies)
    worst = max(minutes, key=run.p99_ms) if minutes else None
    last = len(run.memory) - 1
    baseline = min(WARM_UP_MINUTES, max(1, last - 1))
    growth = ", ".join(
        f"{name} {(run.memory[last][name] - run.memory[baseline].get(name, 0)) / MB:+,.1f} MB"
        for name in run.processes
    )
    if worst is None:
        verdict = "no minute measured"
    else:
        p99 = run.p99_ms(worst)
        met = "met" if p99 <= TARGET_P99_MS else "NOT met"
        verdict = f"worst minute's p99 {p99:,.1f} ms (minute {worst}) vs <= {TARGET_P99_MS} ms: {met}"
    return f"  relay {run.relay}: {verdict}; RSS growth minute {baseline} → {last}: {growth}"


def print_run(soak: Soak, run: SoakRun) -> None:
    print_table(
        f"Soak, relay {run.relay}: speed to lead (capture's commit → the initial call task) of the leads "
        f"captured each minute, and each process type's RSS at the minute's end (MB, the program and its "
        f"children) — {soak.rate:g} leads/s for {soak.minutes} min, nobody contacts a lead, SLA and call "
        f"task due {soak.sla_minutes} min after capture (whole Procfile stack: {run.described})",
        [
            "minute",
            "leads",
            "no task",
            "p50 ms",
            "p99 ms",
            "max ms",
            "host slowdown p50 / p90",
            *(f"{name} MB" for name in run.processes),
        ],
        minute_rows(run),
    )
    if soak.every:
        print_table(
            f"Soak, relay {run.relay}: speed to lead by {soak.every} s window of the load",
            ["seconds", "leads", "p50 ms", "p99 ms", "max ms"],
            window_rows(run, soak.every),
        )
    print(summary(run))
    made = "; ".join(
        f"{what} " + ", ".join(f"{status} {n:,}" for status, n in sorted(by_status.items()))
        for what, by_status in run.made.items()
    )
    print(f"  relay {run.relay}: made by the end: {made}")
    late = sorted(run.lags)
    print(
        f"  relay {run.relay}: captured {run.statuses.get(201, 0):,} of {sum(run.statuses.values()):,} "
        f"(statuses {run.statuses}), {run.statuses.get(201, 0) / max(run.sending, 1e-9):.1f} leads/s "
        f"achieved, sender lag p99 {percentile(late, 99) * 1000:.0f} ms"
    )
    print(typical(run.host))
