"""The Procfile's processes as a deploy handles them: each started from its own Procfile line, and
each stopped and started again on its own (a rolling restart), as an orchestrator does with the
containers of one service after another; or, for a web, reloaded in place (`reload`).

A stop is what `docker stop` and Kubernetes do: SIGTERM to the process (the Procfile line `exec`s
it, so it is the one started), then wait. gunicorn then stops accepting and finishes its requests;
a Celery worker warm-shuts down (its running tasks finish, what it prefetched goes back to the
broker); beat just stops sending. A reload is SIGHUP to gunicorn: new workers on the same socket,
the old ones finish every connection they accepted and exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

from bench.stack import BIN, procfile_processes
from tests.workers import PROJECT_ROOT, wait_for

STOP_TIMEOUT = 60.0  # above gunicorn's --graceful-timeout (20 s) and any task of ours
PORT_VARIABLES = {
    "web": "PORT",
    "stream": "STREAM_PORT",
    "flower": "FLOWER_PORT",
}  # as the Procfile reads them
BOOTED = "Booting worker with pid"  # gunicorn's line for each worker it starts


class ProcfileProcess:
    """One Procfile process type (`kind`, e.g. "web" or "worker"); `name` tells two of a kind apart."""

    def __init__(self, kind: str, env: dict[str, str], logs: Path, name: str | None = None):
        self.kind, self.name, self.logs = kind, name or kind, logs
        self.env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', os.environ.get('PATH', ''))}"}
        self.process: subprocess.Popen | None = None
        self.exits: list[int] = []  # each stop's exit status, in order

    @property
    def port(self) -> int:
        """The port it listens on: a web's $PORT, the stream's $STREAM_PORT, Flower's $FLOWER_PORT."""
        return int(self.env[PORT_VARIABLES.get(self.kind, "PORT")])

    def start(self) -> ProcfileProcess:
        metrics = self.logs / f"metrics-{self.name}-{len(self.exits)}"  # a fresh one per life
        metrics.mkdir()
        log = self.logs / f"{self.name}.log"
        self.log_start = log.stat().st_size if log.exists() else 0  # where this life's lines begin
        with open(self.logs / f"{self.name}.log", "ab") as out:
            self.process = subprocess.Popen(
                ["/bin/sh", "-c", procfile_processes()[self.kind]],
                cwd=PROJECT_ROOT,
                env={**self.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def stop(self) -> int:
        """SIGTERM to the process only (not its pool's children: the program stops them), and wait."""
        assert self.process is not None
        with suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            status = self.process.wait()
        self.exits.append(status)
        return status

    def reload(self, timeout: float = 90.0) -> None:
        """gunicorn's graceful reload (SIGHUP), as an in-place deploy of the web does: new workers
        load the new code on the same listening socket, the old ones finish what they accepted and
        exit. Returns once the new workers have booted and /readyz answers."""
        assert self.kind == "web" and self.process is not None
        booted = self.log().count(BOOTED) + int(self.env.get("WEB_CONCURRENCY", "2"))
        self.process.send_signal(signal.SIGHUP)
        wait_for(lambda: self.log().count(BOOTED) >= booted, timeout=timeout, interval=0.1)
        wait_for(lambda: web_ready(self.port), timeout=timeout, interval=0.2)

    def kill(self) -> None:
        """At the end of a test: whatever is left of the process' session."""
        if self.process is not None and self.process.poll() is None:
            self.stop()
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        """This life's output."""
        with open(self.logs / f"{self.name}.log", "rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")


def web_ready(port: int) -> bool:
    """/readyz answers 200 (what a load balancer's health check asks before it sends traffic): a
    web's, or the stream process's (its Redis subscription and the database)."""
    try:
        # As patient as a balancer's health check: a busy web queues it behind the requests it has.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as answer:
            return answer.status == 200
    except OSError:
        return False


def wait_ready(process: ProcfileProcess, sender, timeout: float = 90.0) -> None:
    """Until the process does its work: a web or the stream answers /readyz, a worker answers a
    control ping (`sender`: a Celery app on the same broker), Flower answers, beat has started its
    scheduler."""
    command = procfile_processes()[process.kind]

    def ready() -> bool:
        assert process.alive(), f"{process.name} exited:\n{process.log()[-3000:]}"
        if process.kind in ("web", "stream"):
            return web_ready(process.port)
        if process.kind == "flower":
            return _answers(process.port)
        if " worker " in command:
            hostname = next(a for a in command.split() if a.startswith("--hostname=")).split("=", 1)[1]
            destination = hostname.replace("%h", socket.gethostname())
            return bool(sender.control.ping(destination=[destination], timeout=0.5))
        return "beat: Starting" in process.log()

    wait_for(ready, timeout=timeout, interval=0.2)


def _answers(port: int) -> bool:
    """Anything answers HTTP on `port` (Flower's basic auth refuses us: it is up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
