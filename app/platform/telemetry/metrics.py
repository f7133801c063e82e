"""The process's Prometheus instruments (prometheus-client), in multiprocess mode when asked.

With PROMETHEUS_MULTIPROC_DIR set before this module is imported (`make run` sets a fresh directory
per start, shared by web, worker and beat; the Procfile run without it gives each process type a
fresh one of its own), each process writes its samples to files there and a scrape sums every
process's files: gunicorn's workers and Celery's pool children are counted whichever one answers
/metrics. Without it (tests, a single process) the samples live in
this process's default registry.

They are kept only while METRICS_TOKEN is set (the callers check): without it /metrics does not
exist, and no one could read them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import REGISTRY, Counter, Histogram, multiprocess

# Request latency: most answers take milliseconds; the top buckets catch a stalled dependency.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Lateness, due → done: a row on time runs within a second of due; the redispatch grace is minutes.
_LATENESS_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

REQUEST_SECONDS = Histogram(
    "followup_http_request_duration_seconds",
    "HTTP request latency by endpoint (the URL rule, not the raw path), method and status.",
    ["endpoint", "method", "status"],
    buckets=_REQUEST_BUCKETS,
)
JOB_RUNS = Counter(
    "followup_job_runs",
    "Ledger job deliveries by kind and outcome (done, skipped, early, retrying, failed, ...).",
    ["kind", "outcome"],
)
JOB_LATENESS = Histogram(
    "followup_job_lateness_seconds",
    "Ledger jobs done: seconds from due_at to done, by kind.",
    ["kind"],
    buckets=_LATENESS_BUCKETS,
)
JOB_SECONDS = Histogram(
    "followup_job_duration_seconds",
    "Ledger job runs: seconds to claim, run and commit one row, by kind.",
    ["kind"],
    buckets=_REQUEST_BUCKETS,
)

UNMATCHED = "<unmatched>"  # a request no URL rule matched (a 404 or 405): one series, not one per path


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def observe_request(*, endpoint: str | None, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(endpoint or UNMATCHED, method, str(status)).observe(seconds)


def job_ran(*, kind: str, outcome: str, due_at: datetime | None, now: datetime, seconds: float) -> None:
    """One delivery of a ledger row ended with `outcome`; a row done also counts its lateness."""
    JOB_RUNS.labels(kind, outcome).inc()
    JOB_SECONDS.labels(kind).observe(seconds)
    if outcome == "done" and due_at is not None:
        JOB_LATENESS.labels(kind).observe(max(0.0, (now - due_at).total_seconds()))


def process_samples():
    """The instruments' samples: every process's (multiprocess mode) or this process's own."""
    path = multiprocess_dir()
    if path:
        return multiprocess.MultiProcessCollector(None, path=path)
    return REGISTRY


def mark_process_dead(pid: int) -> None:
    """A child process ended (gunicorn worker, Celery pool child): drop its live-gauge files."""
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(pid, path)


class Combined:
    """Several collectors as one, for `generate_latest`."""

    def __init__(self, collectors: Iterable):
        self._collectors = list(collectors)

    def collect(self):
        for collector in self._collectors:
            yield from collector.collect()
