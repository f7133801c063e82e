"""bench/report: issue 20's figures in one table: each figure, its reference measured in the same run,
their ratio, and the target.

`make bench BENCH_ARGS=report` (with DATABASE_URL=postgresql://... for figures worth quoting: at most
about 12 minutes on a 2-core machine, 20 s a speed-to-lead mode). Flags: --quick (every part small
and short: a smoke test of the report, its figures not to be quoted), --parts=stack,capture,ledger,
sweep,email (some of them).

- stack: bench/automation's whole Procfile stack, speed to lead (capture's commit → the initial call
  task, p99) at 100 leads/s on a database just migrated, warm, and under fire; fresh and fire are
  compared with warm.
- capture: bench/leads_write, POST /api/leads against the raw Flask + psycopg one-INSERT app, both
  with kept-alive clients.
- ledger: bench/scheduler's throughput, ledger jobs end to end against plain Celery no-op tasks on
  the same worker.
- sweep: bench/scheduler's claim of 10,000 due rows among the largest ledger against the smallest.
- email: bench/notifications, emails/s to a local SMTP server, clean and with 20% transient failures.
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from bench.common import print_table

PARTS = ("stack", "capture", "ledger", "sweep", "email")


@dataclass(frozen=True)
class Target:
    bound: float
    at_most: bool  # the figure (or the ratio) must be at most `bound`; else at least
    on_ratio: bool = False  # the bound is on the ratio to the reference, not on the figure

    def describe(self, unit: str) -> str:
        sign = "<=" if self.at_most else ">="
        return f"ratio {sign} {self.bound:g}" if self.on_ratio else f"{sign} {self.bound:g} {unit}"


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | None  # None: not measured (the part failed or found nothing)
    unit: str
    target: Target
    reference: str = ""  # what it is compared with, measured in the same run
    reference_value: float | None = None
    note: str = ""
    sound: bool = True  # False: the run broke a guarantee (an email twice), whatever the figure

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.reference_value:
            return None
        return self.value / self.reference_value

    def met(self) -> bool:
        measured = self.ratio if self.target.on_ratio else self.value
        if not self.sound or measured is None or math.isnan(measured):
            return False
        return measured <= self.target.bound if self.target.at_most else measured >= self.target.bound


def table_rows(figures: list[Figure]) -> list[list]:
    return [
        [
            f.name,
            _number(f.value, f.unit),
            f.reference or "-",
            _number(f.reference_value, f.unit) if f.reference else "-",
            "-" if f.ratio is None else f"{f.ratio:.2f}",
            f.target.describe(f.unit),
            ("yes" if f.met() else "NO") + (f" ({f.note})" if f.note else ""),
        ]
        for f in figures
    ]


HEADERS = ["figure", "value", "reference (same run)", "reference value", "ratio", "target", "met"]


def _number(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "not measured"
    shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{shown} {unit}"


# --- the parts: each runs a benchmark and returns its figures --------------------------------------


def stack_figures(quick: bool) -> list[Figure]:
    from bench import automation

    rate, seconds = (20, 5) if quick else (100, 20)
    # A stack that cannot keep up is reported as such (leads never served count as infinitely late)
    # within a bounded wait, so the report ends in about 10 minutes whatever it finds.
    automation.DRAIN_TIMEOUT = 30.0 if quick else 60.0
    phases, _run = automation.whole_stack(
        automation.Load(rate, seconds, clients=2 if quick else 8, warm_up=2 if quick else 10),
        list(automation.MODES),
        fire_size=500 if quick else 10_000,
    )
    by_mode = {phase.mode: phase for phase in phases}
    warm = by_mode["warm"].p99_ms()
    target = Target(automation.TARGET_P99_MS, at_most=True)
    name = f"speed to lead p99 at {rate} leads/s, whole stack"
    fire = by_mode["fire"]
    burning = fire.fire["while burning"]
    return [
        Figure(
            f"{name}, fresh database",
            by_mode["fresh"].p99_ms(),
            "ms",
            target,
            "warm p99",
            warm,
            note=f"host slowdown {by_mode['fresh'].host_slowdown()}",
        ),
        Figure(f"{name}, warm", warm, "ms", target, note=f"host slowdown {by_mode['warm'].host_slowdown()}"),
        Figure(
            f"{name}, under fire",
            fire.p99_ms(),
            "ms",
            target,
            "warm p99",
            warm,
            note=f"bulk {fire.fire['bulk seconds']:.0f} s, campaign {fire.fire['campaign seconds']:.0f} s, "
            f"host slowdown {fire.host_slowdown()}",
        ),
        Figure(
            f"{name}, while the fire burned",
            _p99_ms(burning) if burning else None,
            "ms",
            target,
            "warm p99",
            warm,
            note=f"{len(burning)} leads",
        ),
    ]


def _p99_ms(seconds: list[float]) -> float:
    from bench.common import percentile

    return percentile(seconds, 99) * 1000


def capture_figures(quick: bool) -> list[Figure]:
    from bench import leads_write

    results = leads_write.measure(
        seconds=3 if quick else 20,
        clients=2 if quick else 8,
        threads=leads_write.WEB_THREADS,
        warm_up=1 if quick else 5,
        phases=("capture", "raw"),
    )
    return [
        Figure(
            "capture, POST /api/leads, kept-alive clients",
            results["capture"]["rate"],
            "/s",
            Target(leads_write.TARGET_RAW_RATIO, at_most=False, on_ratio=True),
            "raw Flask + psycopg INSERT",
            results["raw"]["rate"],
            note=f"p99 {results['capture']['p99']:.0f} ms",
        )
    ]


def ledger_figures(quick: bool) -> list[Figure]:
    from bench import scheduler

    sizes = scheduler.Sizes(
        throughput_jobs=500 if quick else 5_000,
        throughput_concurrency=(2,),
        throughput_repeats=1 if quick else 3,
    )
    rows, _ = scheduler.measure(sizes, ["throughput"])
    ledger = _row_value(rows, "throughput", "jobs/s")
    noop = _row_value(rows, "throughput", "tasks/s")
    return [
        Figure(
            "ledger jobs end to end, worker concurrency 2",
            ledger,
            "/s",
            Target(1.0, at_most=False, on_ratio=True),
            "plain Celery no-op tasks",
            noop,
        )
    ]


def sweep_figures(quick: bool) -> list[Figure]:
    from bench import scheduler

    small, large, due = (10_000, 100_000, 1_000) if quick else (100_000, 10_000_000, 10_000)
    sizes = scheduler.Sizes(pending=large, sweep_due=due, sweep_tables=(small, large))
    rows, _ = scheduler.measure(sizes, ["sweep"])
    claims = [r for r in rows if r[0] == "sweep" and r[1].startswith("claim")]
    promotes = [r for r in rows if r[0] == "sweep" and r[1].startswith("promote_due")]
    ms = lambda rows, i: rows[i][2] * 1000 if len(rows) > i else None  # noqa: E731
    return [
        Figure(
            f"claim {due:,} due rows among {large:,}",
            ms(claims, -1),
            "ms",
            Target(200, at_most=True),
            f"the same among {small:,}",
            ms(claims, 0),
        ),
        Figure(
            f"claim + publish {due:,} due rows among {large:,}",
            ms(promotes, -1),
            "ms",
            Target(1000, at_most=True),
            f"the same among {small:,}",
            ms(promotes, 0),
        ),
    ]


def email_figures(quick: bool) -> list[Figure]:
    from bench import notifications

    count = 500 if quick else 10_000
    rows, _ = notifications.measure(count=count, concurrency=4)
    column = {name: i for i, name in enumerate(notifications.COLUMNS)}
    figures = []
    for row in rows:
        figures.append(
            Figure(
                f"email to a local SMTP server, {row[column['run']]}",
                row[column["messages/s"]],
                "/s",
                Target(1000, at_most=False),
                note=f"{count:,} emails, each once: {row[column['each once']]}",
                sound=row[column["each once"]] == "yes",
            )
        )
    return figures


def _row_value(rows: list[list], part: str, unit: str) -> float | None:
    found = [r[2] for r in rows if r[0] == part and r[3] == unit]
    return found[-1] if found else None


PART_FIGURES: dict[str, Callable[[bool], list[Figure]]] = {
    "stack": stack_figures,
    "capture": capture_figures,
    "ledger": ledger_figures,
    "sweep": sweep_figures,
    "email": email_figures,
}


def main(flags: list[str]) -> None:
    quick = "--quick" in flags
    parts = list(PARTS)
    for flag in flags:
        if flag.startswith("--parts="):
            parts = [p for p in flag.split("=", 1)[1].split(",") if p]
            unknown = set(parts) - set(PARTS)
            if unknown:
                raise SystemExit(f"--parts: unknown {sorted(unknown)}; use {','.join(PARTS)}")
    started, load = time.monotonic(), os.getloadavg()[0]
    figures: list[Figure] = []
    for part in parts:
        print(f"\n--- report: {part} ---", flush=True)
        began = time.monotonic()
        try:
            figures.extend(PART_FIGURES[part](quick))
        except Exception as exc:  # one part failing still leaves the others' figures
            traceback.print_exc(file=sys.stderr)
            figures.append(Figure(f"{part}: failed ({exc.__class__.__name__})", None, "", Target(0, True)))
        print(f"--- report: {part} took {time.monotonic() - began:.0f} s ---", flush=True)
    database = "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    print_table(
        f"bench/report: issue 20 ({database}{', --quick: not figures to quote' if quick else ''}; "
        f"{time.monotonic() - started:.0f} s; {os.cpu_count()} cores, 1-min load average {load:.1f} "
        f"at start, {os.getloadavg()[0]:.1f} at end)",
        HEADERS,
        table_rows(figures),
    )
