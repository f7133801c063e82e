"""Real Celery workers for tests: an in-process thread worker, or a `celery worker` subprocess."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from celery.contrib.testing.worker import start_worker

from workers.celery_app import worker_app

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def thread_worker(flask_app, pool: str = "threads", concurrency: int = 2):
    """A worker consuming every queue inside this process, bound to `flask_app` and its Redis,
    started mid-test (the `celery_worker` fixture of tests/conftest.py starts before the test: use it
    unless the test must see the broker's queues before anything consumes them)."""
    celery = worker_app(flask_app)
    with start_worker(
        celery, pool=pool, concurrency=concurrency, perform_ping_check=False, shutdown_timeout=30
    ):
        yield celery


def worker_env(settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        SECRET_KEY=settings.secret_key,
        PHI_ENCRYPTION_KEY=settings.phi_encryption_key or "",
        FOLLOWUP_ENV="test",
        PYTHONPATH=str(PROJECT_ROOT),
    )
    env.pop("CELERY_BROKER_URL", None)
    if settings.redis_sentinel_master:  # REDIS_URL names Sentinels (tests/sentinel.py)
        env["FOLLOWUP_REDIS_SENTINEL_MASTER"] = settings.redis_sentinel_master
    if settings.broker_url:  # a RabbitMQ broker (tests/brokers.py); Redis stays for the rest
        env["CELERY_BROKER_URL"] = settings.broker_url
    env.update(extra)
    return env


@contextmanager
def celery_process(settings, *args: str, log_file: Path | None = None, **extra_env: str):
    """`celery -A workers.main ARGS` as a child process in a session of its own; yields the Popen and
    stops it (TERM, then KILL) on the way out."""
    out = open(log_file, "ab") if log_file else None  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.main", *args],
        cwd=PROJECT_ROOT,
        env=worker_env(settings, **extra_env),
        start_new_session=True,
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if out:
            out.close()


def subprocess_worker(
    settings, *, concurrency: int = 2, queues: str | None = None, name: str = "w1", **extra_env: str
):
    """`celery worker` as a child process (for kill -9 tests); yields the Popen."""
    args = [
        "worker",
        "--loglevel=WARNING",
        f"--concurrency={concurrency}",
        f"--hostname={name}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    if queues:
        args.append(f"--queues={queues}")
    return celery_process(settings, *args, **extra_env)


def subprocess_beat(settings, *, schedule_file: Path, log_file: Path | None = None, **extra_env: str):
    """`celery beat` as a child process (a real scheduler sending the sweeps); yields the Popen."""
    return celery_process(
        settings, "beat", "--loglevel=INFO", f"--schedule={schedule_file}", log_file=log_file, **extra_env
    )


FLOWER_AUTH = "ops:flower-test"


def subprocess_flower(settings, *, port: int, basic_auth: str = FLOWER_AUTH, **extra_env: str):
    """Flower as the Procfile starts it, as a child process; yields the Popen."""
    return celery_process(
        settings,
        "flower",
        f"--port={port}",
        "--address=127.0.0.1",
        f"--basic-auth={basic_auth}",
        **extra_env,
    )


def flower_api(port: int, path: str, basic_auth: str = FLOWER_AUTH):
    """GET Flower's API at `path` (behind its basic auth): the decoded JSON, or None while it cannot
    answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/{path}",
        headers={"Authorization": "Basic " + base64.b64encode(basic_auth.encode()).decode()},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_until_consuming(flask_app, name: str, timeout: float = 60.0) -> None:
    """Wait until the worker started with `name` answers a control ping (its consumer is running)."""
    sender = flask_app.extensions["followup.dispatcher"].celery
    hostname = f"{name}@{socket.gethostname()}"
    wait_for(lambda: sender.control.ping(destination=[hostname], timeout=0.5), timeout=timeout, interval=0.2)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    """Poll until `predicate()` is truthy; return its value or fail with the last one seen."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    assert value, f"condition not met within {timeout}s"
    return value


class gunicorn:
    """The Procfile's web process: gunicorn with the app's gunicorn config, `workers` gthread workers."""

    def __init__(self, env: dict, port: int, workers: int = 2):
        self.env, self.port, self.workers = env, port, workers

    def __enter__(self):
        args = [
            sys.executable, "-m", "gunicorn", "-c", "python:app.platform.telemetry.gunicorn_config",
            "app:create_app()", "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
            "--worker-class", "gthread", "--threads", "2",
        ]  # fmt: skip
        self.process = subprocess.Popen(args, cwd=PROJECT_ROOT, env=self.env, start_new_session=True)
        wait_for(self._up, timeout=60, interval=0.2)
        return self

    def _up(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as answer:
                return answer.status == 200
        except OSError:
            return False

    def __exit__(self, *exc):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)
