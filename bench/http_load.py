"""A closed-loop HTTP load generator (client processes; a connection per request, or kept alive), and
gunicorn control."""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from bench.common import machine_busy_seconds, percentile

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# As the Procfile's default WEB_THREADS. Measured with bench/leads_write on 2 cores: 4 threads per
# process captured about 4% more leads per second than 2, with lower latency (more requests in
# flight while others wait for the database), and the bare ceiling gained about 15%.
WEB_THREADS = 4


@contextmanager
def gunicorn(app_spec: str, env: dict[str, str], port: int, workers: int = 2, threads: int = WEB_THREADS):
    """gunicorn serving `app_spec` on 127.0.0.1:port until the block ends.

    As the Procfile runs it by default: the gthread worker with `threads` threads per process
    (WEB_THREADS); threads=0: the sync worker (one request at a time per process).
    """
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        app_spec,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--backlog",
        "2048",
    ]
    if threads:
        args += ["--worker-class", "gthread", "--threads", str(threads)]
    process = subprocess.Popen(args, cwd=PROJECT_ROOT, env={**os.environ, **env}, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _client(port, method, path, headers, body_factory, seed, stop_at, queue, keep_alive):
    """One client: requests back to back until `stop_at`. keep_alive: one connection for all of them
    (as a frontend's HTTP client or a proxy keeps it), opened again only when the server closed it;
    else a new TCP connection per request."""
    latencies, statuses = [], {}
    n = 0
    conn = None
    while time.monotonic() < stop_at:
        body = body_factory(seed, n)
        n += 1
        payload = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(method, path, body=payload, headers={**headers, "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            if not keep_alive or resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            conn = None
        latencies.append(time.perf_counter() - started)
        statuses[status] = statuses.get(status, 0) + 1
    if conn is not None:
        conn.close()
    queue.put((latencies, statuses))


def run_load(
    *,
    port: int,
    method: str,
    path: str,
    headers: dict,
    body_factory,
    duration: float,
    concurrency: int,
    first_seed: int = 0,
    keep_alive: bool = False,
) -> dict:
    """Closed-loop load for `duration` seconds; returns rate, latency percentiles (ms) and status counts.

    Client i builds its bodies with seed `first_seed + i`: give a second run other seeds than the
    first when the bodies must differ (new leads rather than duplicates of earlier ones)."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    stop_at = time.monotonic() + duration
    procs = [
        ctx.Process(
            target=_client,
            args=(port, method, path, headers, body_factory, first_seed + i, stop_at, queue, keep_alive),
        )
        for i in range(concurrency)
    ]
    started, busy_before = time.monotonic(), machine_busy_seconds()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed, busy_after = time.monotonic() - started, machine_busy_seconds()
    latencies = sorted(x for lat, _ in results for x in lat)
    statuses: dict[int, int] = {}
    for _, st in results:
        for code, count in st.items():
            statuses[code] = statuses.get(code, 0) + count
    busy = None if busy_before is None else busy_after - busy_before
    return {
        "requests": len(latencies),
        "cpu_ms": None if busy is None or not latencies else 1000 * busy / len(latencies),
        "rate": len(latencies) / elapsed,
        "p50": percentile(latencies, 50) * 1000,
        "p95": percentile(latencies, 95) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "statuses": statuses,
    }
