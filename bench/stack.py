"""The Procfile's processes for benchmarks of the whole stack, started from the Procfile's own lines.

The Procfile is the one description of how the system runs (commands, concurrency, queues); a
benchmark of the user's experience runs exactly that, with only the environment its own (database,
Redis, port), rather than restating the commands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
from honcho.environ import parse_procfile

from app.devtools.local_redis import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROCFILE = PROJECT_ROOT / "Procfile"
BIN = Path(sys.executable).parent
PROCESS_MARK = "FOLLOWUP_BENCH_PROCESS"  # in each started process' environment: which Procfile line


def procfile_processes() -> dict[str, str]:
    """The Procfile's process types and their commands, in the file's order."""
    return dict(parse_procfile(PROCFILE.read_text()).processes)


def stack_env(env: dict[str, str], workdir: Path, port: int) -> dict[str, str]:
    """The environment the Procfile's processes get: the caller's, the venv's tools first on PATH."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "BEAT_SCHEDULE_FILE": str(workdir / "celerybeat-schedule"),
        "PROMETHEUS_MULTIPROC_DIR": str(_fresh_dir(workdir / "metrics")),
        # The stream process' own port: its default (5001) may be another stack's on a shared machine.
        "STREAM_PORT": str(free_port()),
        **env,
        "PORT": str(port),
    }


def _fresh_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _start(name: str, env: dict[str, str], logs: Path) -> subprocess.Popen:
    """The Procfile's `name` process as a process manager runs it (`sh -c` its line), its output to a
    file of its own: no multiplexer in its path (honcho reading every process' log lines through one
    Python process slows the logging processes down when it falls behind)."""
    out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        ["/bin/sh", "-c", procfile_processes()[name]],
        cwd=PROJECT_ROOT,
        env={**env, PROCESS_MARK: name},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def release(env: dict[str, str], logs: Path) -> float:
    """Run the Procfile's `release` process (the migrations) to its end; returns its seconds."""
    started = time.monotonic()
    process = _start("release", env, logs)
    if process.wait(timeout=600) != 0:
        raise RuntimeError(f"the Procfile's release failed: see {logs / 'release.log'}")
    return time.monotonic() - started


@dataclass
class Stack:
    started: dict[str, subprocess.Popen]
    port: int

    def processes(self) -> dict[str, list[psutil.Process]]:
        """Each Procfile process type's OS processes (the program and its pool children)."""
        found: dict[str, list[psutil.Process]] = {}
        for name, popen in self.started.items():
            try:
                root = psutil.Process(popen.pid)
                found[name] = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                found[name] = []
        return found

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU so far of each process type (live processes only)."""
        totals = {}
        for name, processes in self.processes().items():
            total = 0.0
            for process in processes:
                try:
                    times = process.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
            totals[name] = total
        return totals

    def memory(self) -> dict[str, int]:
        """Resident memory (RSS, bytes) of each process type: the program and its children summed
        (pages they share count once for each)."""
        totals = {}
        for name, processes in self.processes().items():
            total = 0
            for process in processes:
                try:
                    total += process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            totals[name] = total
        return totals

    def check(self) -> None:
        for name, popen in self.started.items():
            if popen.poll() is not None:
                raise RuntimeError(f"the Procfile's {name} stopped (exit {popen.returncode})")


@contextmanager
def procfile_stack(names: list[str], env: dict[str, str], logs: Path, ready_timeout: float = 60.0):
    """The Procfile's `names` processes until the block ends, each's output in logs/<name>.log; `env`
    from `stack_env` (the web process listens on its PORT)."""
    started: dict[str, subprocess.Popen] = {}
    try:
        for name in names:
            started[name] = _start(name, env, logs)
        stack = Stack(started, int(env["PORT"]))
        if "web" in names:
            _wait_http(f"http://127.0.0.1:{env['PORT']}/healthz", stack, ready_timeout)
        yield stack
    finally:
        for popen in started.values():
            _signal(popen, signal.SIGTERM)
        for popen in started.values():
            try:
                popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                _signal(popen, signal.SIGKILL)
                popen.wait()


def _wait_http(url: str, stack: Stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check()
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _signal(popen: subprocess.Popen, signum: int) -> None:
    """To the process' session: the program and anything it started (its `exec` replaced the shell)."""
    with suppress(ProcessLookupError):
        os.killpg(popen.pid, signum)
