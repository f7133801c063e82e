"""The overhead of metrics and tracing: bench/leads_write's capture load and bench/automation's
capture → task pipeline, with observability off and on, alternated in one run.

`make bench BENCH_ARGS=observability` (with DATABASE_URL=postgresql://... for the figures that count).
Flags: --seconds=20 (per capture phase), --clients=8, --rate=100 and --load-seconds=30 (leads/s and
seconds per automation phase), --concurrency=2 (worker processes), --rounds=2 (off/on pairs).

off: no METRICS_TOKEN (nothing counted: /metrics does not exist), tracing off.
on:  METRICS_TOKEN and a fresh PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess files, as
     the Procfile runs), and OTEL_TRACES_EXPORTER=otlp exporting every span (sampler always_on) over
     http/protobuf to a local sink that answers 200, so serialising and sending spans is counted.
Both phases log at WARNING (no per-request lines), as the other benches do.
"""

from __future__ import annotations

import os
import tempfile
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from app.devtools.local_redis import free_port
from app.platform import migrate
from bench.automation import capture_to_task
from bench.common import bench_database, bench_redis, percentile, print_table
from bench.http_load import gunicorn
from bench.leads_write import _capture_load, _flag, _seed, _warm_up, server_env

TOKEN = "bench-metrics-token"


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that keeps nothing: 200 and an empty ExportTraceServiceResponse."""

    received = {"requests": 0, "bytes": 0}

    def do_POST(self):
        size = int(self.headers.get("Content-Length", 0))
        self.rfile.read(size)
        _Sink.received["requests"] += 1
        _Sink.received["bytes"] += size
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        return


@contextmanager
def _sink():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        server.shutdown()


@contextmanager
def _observability(on: bool, workdir: Path, sink_url: str):
    """The environment the servers (gunicorn, the Celery worker) start with, for one phase."""
    values = {"LOG_LEVEL": "WARNING"}
    if on:
        metrics_dir = Path(tempfile.mkdtemp(dir=workdir))
        values |= {
            "METRICS_TOKEN": TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink_url,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_SERVICE_NAME": "followup-bench",
        }
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main(flags: list[str]) -> None:
    seconds, clients = _flag(flags, "seconds", 20), int(_flag(flags, "clients", 8))
    rate, load_seconds = _flag(flags, "rate", 100), _flag(flags, "load-seconds", 30)
    concurrency, rounds = int(_flag(flags, "concurrency", 2)), int(_flag(flags, "rounds", 2))
    capture_rows, automation_rows = [], []
    with tempfile.TemporaryDirectory() as tmp, _sink() as sink_url:
        # Each load on a database and a Redis of its own: the capture load leaves a queue of
        # automation jobs no worker takes, which the automation load must not inherit.
        capture, auto = _dir(tmp, "capture"), _dir(tmp, "automation")
        with bench_database(capture) as db_url, bench_redis(capture) as redis_url:
            migrate.upgrade(db_url)
            token = _seed(db_url, redis_url)
            env, port = server_env(db_url, redis_url), free_port()
            with gunicorn("app:create_app()", env, port):
                _warm_up(db_url, port, token, 5, clients)  # as bench/leads_write: then ANALYZE
            for round_, mode in _phases(rounds):
                with (
                    _observability(mode == "on", Path(tmp), sink_url),
                    gunicorn("app:create_app()", env, port),
                ):
                    leads = _capture_load(port, token, seconds, clients, first_seed=1000 * round_)
                capture_rows.append(_capture_row(mode, round_, leads))
        with bench_database(auto) as db_url, bench_redis(auto) as redis_url:
            migrate.upgrade(db_url)
            token = _seed(db_url, redis_url)
            for round_, mode in _phases(rounds):
                with _observability(mode == "on", Path(tmp), sink_url):
                    statuses, _lags, latencies, _sending, cpu = capture_to_task(
                        db_url, redis_url, token, rate, load_seconds, clients, concurrency, warm_up=5
                    )
                automation_rows.append(_automation_row(mode, round_, statuses, latencies, cpu))
    dialect = "PostgreSQL" if db_url.startswith("postgresql") else "SQLite"
    print_table(
        f"bench/leads_write's load, observability off vs on ({clients} clients, {seconds:g} s a phase, "
        f"{dialect})",
        ["phase", "requests", "per s", "p50 ms", "p95 ms", "p99 ms", "CPU ms/req", "non-201"],
        capture_rows,
    )
    print_table(
        f"bench/automation's load, observability off vs on ({rate:g} leads/s for {load_seconds:g} s a phase, "
        f"worker concurrency {concurrency}, {dialect})",
        ["phase", "leads", "task p50 ms", "task p99 ms", "told p99 ms", "web CPU ms/lead", "worker ms/lead"],
        automation_rows,
    )
    print(
        f"\n  spans exported in the 'on' phases: {_Sink.received['requests']} OTLP requests, "
        f"{_Sink.received['bytes'] / 1e6:.1f} MB"
    )
    print("  The machine is shared and noisy: compare the pairs of a round, and CPU per request above rates.")


def _dir(parent: str, name: str) -> Path:
    path = Path(parent, name)
    path.mkdir()
    return path


def _phases(rounds: int):
    """off, on, off, on, ...: a pair per round, so drift on a shared machine hits both alike."""
    return [(round_, mode) for round_ in range(1, rounds + 1) for mode in ("off", "on")]


def _capture_row(mode: str, round_: int, leads: dict) -> list:
    return [
        f"{mode} (round {round_})",
        leads["requests"],
        leads["rate"],
        leads["p50"],
        leads["p95"],
        leads["p99"],
        "n/a" if leads["cpu_ms"] is None else leads["cpu_ms"],
        sum(n for code, n in leads["statuses"].items() if code != 201),
    ]


def _automation_row(mode: str, round_: int, statuses: dict, latencies: dict, cpu: dict) -> list:
    captured = max(statuses.get(201, 0), 1)
    return [
        f"{mode} (round {round_})",
        statuses.get(201, 0),
        percentile(latencies["task"], 50) * 1000,
        percentile(latencies["task"], 99) * 1000,
        percentile(latencies["told"], 99) * 1000,
        cpu["web"] / captured * 1000,
        cpu["worker"] / captured * 1000,
    ]
