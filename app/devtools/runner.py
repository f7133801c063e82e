"""`followup run` (behind `make run`): the whole system on the embedded default, stopped by Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from cryptography.fernet import Fernet

from app.devtools.instagram import GraphStandIn
from app.devtools.local_redis import LocalRedis, free_port
from app.platform.config import Settings

# The Procfile's one-off entry: `_prepare` runs it (migrations) before the others start.
ONE_OFF = ("release",)
LOCAL_REDIS_PORT = 16379


def _persistent_secret(var_dir: Path, name: str, make) -> str:
    """A development secret kept in var/<name>, made once: readable by its owner only from the
    start (O_EXCL, mode 0600), and two starts racing agree on one value."""
    path = var_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


def development_secrets(var_dir: Path) -> dict[str, str]:
    """The secrets `make run` gives every process it starts. Only this command makes them: any other
    start without SECRET_KEY or PHI_ENCRYPTION_KEY refuses (app/platform/config.py)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    return {
        "SECRET_KEY": _persistent_secret(var_dir, "secret_key", lambda: secrets.token_urlsafe(32)),
        "PHI_ENCRYPTION_KEY": _persistent_secret(var_dir, "phi.key", lambda: Fernet.generate_key().decode()),
        "FLOWER_BASIC_AUTH": _persistent_secret(
            var_dir, "flower_auth", lambda: "ops:" + secrets.token_urlsafe(10)
        ),
    }


def _embedded_env(port: int, var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("FOLLOWUP_VAR_DIR", str(var_dir))
    env.setdefault("DATABASE_URL", Settings().database_url)
    for name, value in development_secrets(var_dir).items():
        if not env.get(name):
            env[name] = value
    env.setdefault("BEAT_SCHEDULE_FILE", str(var_dir / "celerybeat-schedule"))
    env["PORT"] = str(port)
    env.setdefault("FLOWER_PORT", "5555")
    env.setdefault("STREAM_PORT", str(stream_port(port)))  # the Procfile's `stream` (app/streaming)
    env.setdefault("FOLLOWUP_STREAM_URL", f"http://127.0.0.1:{env['STREAM_PORT']}/api/me/events")
    # The console's own address: the stream (another port) lets a browser on that origin in.
    env.setdefault("FOLLOWUP_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_metrics_dir(var_dir, env.get("PROMETHEUS_MULTIPROC_DIR")))
    return env


def stream_port(port: int) -> int:
    """The stream's port beside the web's `port`: the next one (5000: 5001), or any free one when the
    next is taken (by another program, or as the local end of some connection), so the run starts."""
    try:
        with socket.socket() as sock:
            sock.bind(("0.0.0.0", port + 1))  # where the stream listens (the Procfile's --host)
    except OSError:
        return free_port()
    return port + 1


def fresh_metrics_dir(var_dir: Path, given: str | None = None) -> Path:
    """An empty directory for prometheus-client's multiprocess files, shared by web, worker and beat.

    Samples of a previous run's processes must not be summed into this one's, so each start gets a
    new directory under var/metrics (older ones removed); a directory the operator named is emptied.
    """
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path
    root = var_dir / "metrics"
    if root.exists():
        shutil.rmtree(root)
    path = root / f"run-{os.getpid()}"
    path.mkdir(parents=True)
    return path


def long_running_processes(procfile: Path) -> list[str]:
    """Every entry of the Procfile but its one-off: the Procfile is the one list of what runs."""
    from honcho.environ import parse_procfile  # the dev extra's, as `make run` is

    return [name for name in parse_procfile(procfile.read_text()).processes if name not in ONE_OFF]


def _start_instagram_stand_in(env: dict[str, str], var_dir: Path) -> GraphStandIn | None:
    """Unless INSTAGRAM_GRAPH_URL names Meta's (or another) Graph API: the local stand-in, and the
    engine pointed at it with development secrets for Meta's webhook (docs/features/instagram.md)."""
    if os.environ.get("INSTAGRAM_GRAPH_URL"):
        return None
    stand_in = GraphStandIn(development=True, outbox=var_dir / "outbox" / "instagram.log").start()
    env["INSTAGRAM_GRAPH_URL"] = stand_in.url
    for name, file in (
        ("INSTAGRAM_APP_SECRET", "instagram_app_secret"),
        ("INSTAGRAM_VERIFY_TOKEN", "instagram_verify_token"),
    ):
        if not env.get(name):
            env[name] = _persistent_secret(var_dir, file, lambda: secrets.token_urlsafe(24))
    return stand_in


def _start_local_redis(var_dir: Path) -> LocalRedis:
    try:
        return LocalRedis(var_dir / "redis", port=LOCAL_REDIS_PORT, persist=True).start()
    except RuntimeError:
        return LocalRedis(var_dir / "redis", persist=True).start()  # the usual port is taken


def _prepare(env: dict[str, str]) -> dict:
    """Migrate and seed in child processes, so they read exactly the environment the system runs on."""
    followup = str(Path(sys.executable).parent / "followup")
    subprocess.run([followup, "db", "upgrade"], env=env, check=True)
    out = subprocess.run(
        [followup, "seed-demo", "--json"], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _announce(env: dict[str, str], demo: dict) -> None:
    port, flower_port = env["PORT"], env["FLOWER_PORT"]
    user, _, password = env["FLOWER_BASIC_AUTH"].partition(":")
    lines = [
        "",
        "Follow-up Engine is starting (Ctrl-C stops everything):",
        f"  API docs     http://127.0.0.1:{port}/api/docs",
        f"  Console      http://127.0.0.1:{port}/console  (log in as a demo user below)",
        f"  Readiness    http://127.0.0.1:{port}/readyz",
        f"  Flower       http://127.0.0.1:{flower_port}  (user {user}, password {password})",
        f"  Event stream {env['FOLLOWUP_STREAM_URL']}",
        f"  Redis        {env['REDIS_URL']}",
        f"  Instagram    {env.get('INSTAGRAM_GRAPH_URL')} (a family's DM: python -m app.devtools.instagram)",
        f"  Database     {env['DATABASE_URL']}",
        f"  Demo clinic  {demo['clinic_id']} (web-form secret {demo['webhook_secret'] or 'retired'})",
        "  Demo logins:",
        *[f"    {u['role']:<22} {u['email']:<40} {u['password']}" for u in demo["users"]],
        "",
    ]
    print("\n".join(lines), flush=True)


def _wait_ready(port: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


# honcho's own line when one of its processes ends: "07:01:02 system | worker.1 stopped (rc=1)".
_STOPPED = re.compile(r"\bsystem\s*\|\s*(?P<name>[\w-]+)\.\d+ stopped \(rc=(?P<rc>-?\d+)\)")
_STOPPING = re.compile(r"\bsystem\s*\|\s*(SIGINT|SIGTERM) received")


class ProcessWatcher:
    """Passes honcho's output through and names the process that ended on its own.

    honcho stops every process when one exits, so the cause scrolls away among the others' shutdown
    lines; the watcher prints it plainly, once, when it happens and again at the end.
    """

    def __init__(self, honcho: subprocess.Popen):
        self.honcho = honcho
        self.stopping = False  # Ctrl-C or SIGTERM: processes ending now are being stopped
        self.died: tuple[str, int] | None = None
        self._thread = threading.Thread(target=self._pump, name="honcho-output", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _pump(self) -> None:
        for line in self.honcho.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            self.read(line)

    def read(self, line: str) -> None:
        if _STOPPING.search(line):
            self.stopping = True
            return
        stopped = _STOPPED.search(line)
        if stopped and self.died is None and not self.stopping:
            self.died = (stopped["name"], int(stopped["rc"]))
            print(self.verdict(), file=sys.stderr, flush=True)

    def verdict(self) -> str:
        name, code = self.died
        return (
            f"\nfollowup run: the `{name}` process exited on its own (exit code {code}), so every other "
            f"process is being stopped. Its last lines are those prefixed `{name}.1 |` above.\n"
        )

    def wait(self) -> int:
        while True:
            try:
                code = self.honcho.wait()
                break
            except KeyboardInterrupt:
                # honcho got the same SIGINT from the terminal and stops its processes; wait for it.
                self.stopping = True
        self._thread.join(timeout=5)
        if self.died:
            print(self.verdict(), file=sys.stderr, flush=True)
        return code


def run_all(*, port: int, project_root: Path, var_dir: Path) -> int:
    var_dir.mkdir(parents=True, exist_ok=True)
    env = _embedded_env(port, var_dir)
    redis = None
    if "REDIS_URL" not in os.environ and "CELERY_BROKER_URL" not in os.environ:
        redis = _start_local_redis(var_dir)
        env["REDIS_URL"] = redis.url
    instagram = _start_instagram_stand_in(env, var_dir)
    try:
        demo = _prepare(env)
        _announce(env, demo)
        honcho = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "honcho",
                "-f",
                str(project_root / "Procfile"),
                "-d",
                str(project_root),
                "start",
                *long_running_processes(project_root / "Procfile"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        watcher = ProcessWatcher(honcho)
        watcher.start()
        started = time.monotonic()
        if _wait_ready(env["PORT"]):
            print(f"Ready in {time.monotonic() - started:.1f}s: http://127.0.0.1:{port}/api/docs", flush=True)
        return watcher.wait()
    finally:
        if instagram:
            instagram.stop()
        if redis:
            redis.stop()
