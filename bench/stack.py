"""The Procfile's processes for benchmarks of the whole stack, started by honcho from the Procfile itself.

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

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROCFILE = PROJECT_ROOT / "Procfile"
BIN = Path(sys.executable).parent


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
        **env,
        "PORT": str(port),
    }


def _fresh_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _honcho(names: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", str(PROCFILE), "-d", str(PROJECT_ROOT), "start", *names],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def release(env: dict[str, str], log: Path) -> float:
    """Run the Procfile's `release` process (the migrations) to its end; returns its seconds."""
    started = time.monotonic()
    process = _honcho(["release"], env, log)
    if process.wait(timeout=600) != 0:
        raise RuntimeError(f"the Procfile's release failed: see {log}")
    return time.monotonic() - started


@dataclass
class Stack:
    honcho: subprocess.Popen
    port: int

    def processes(self) -> dict[str, list[psutil.Process]]:
        """Each Procfile process type's OS processes (the program and its pool children)."""
        found: dict[str, list[psutil.Process]] = {}
        for process in psutil.Process(self.honcho.pid).children(recursive=True):
            try:
                # honcho names each process in its environment; the program's children inherit it.
                name = process.environ().get("HONCHO_PROCESS_NAME")
            except psutil.Error:
                continue
            if name:
                found.setdefault(name.split(".")[0], []).append(process)
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


@contextmanager
def procfile_stack(names: list[str], env: dict[str, str], log: Path, ready_timeout: float = 60.0):
    """The Procfile's `names` processes until the block ends; `env` from `stack_env`. The web process
    (when named first) listens on env's PORT."""
    process = _honcho(names, env, log)
    try:
        if "web" in names:
            _wait_http(f"http://127.0.0.1:{env['PORT']}/healthz", process, log, ready_timeout)
        yield Stack(process, int(env["PORT"]))
    finally:
        _stop(process)


def _wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Procfile's processes stopped: see {log}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer: see {log}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to honcho, which stops its processes and waits for them; SIGKILL the group if stuck."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything left behind in the session
    process.wait()
