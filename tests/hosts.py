"""Several hosts on one machine: each a network namespace the test makes, on a switch of its own.

    switch namespace: bridge `br0`, 10.231.0.254 (the test's client: its HTTP requests come from here)
      ├── services: 10.231.0.2   PostgreSQL (socat to the machine's server's unix socket), redis-server
      ├── h1: 10.231.0.11        the Procfile's processes (web, worker, sender, background, ... beat)
      ├── h2: 10.231.0.12        the same, without beat
      └── ...

Every address lives only inside these namespaces: the root namespace gets none, and nothing here
sends a packet anywhere else. Each host has a hostname of its own too (a UTS namespace), so the
workers' `worker@%h` names differ as on real machines. The filesystem is shared: logs, the beat
schedule and the PostgreSQL socket are plain paths.

A partition takes the host's port on the switch down (its cable pulled: no packet in or out, no
error either, until it is plugged in again); a kill sends SIGKILL to every process in the host's
namespace. Everything made here is removed on the way out, on failure too.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
from honcho.environ import parse_procfile

from app.devtools.local_redis import redis_server_binary
from tests.requirements import need
from tests.workers import PROJECT_ROOT, wait_for, worker_env

SUBNET = "10.231.0"
SERVICES_ADDRESS = f"{SUBNET}.2"
CLIENT_ADDRESS = f"{SUBNET}.254"
REDIS_PORT = 6379
PG_PORT = 5432
WEB_PORT = 8000
PG_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"
# The Procfile's processes a host runs (flower only watches; beat runs on one host, see `start`).
HOST_PROCESSES = ("web", "worker", "sender", "background", "webhooks", "sweeps")
CLONE_NEWNET = 0x40000000


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and run.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {run.stderr.strip()}")
    return run


def netns_unavailable() -> str | None:
    """Why several hosts cannot be made here, or None: tried with a throwaway namespace."""
    tools = (("ip", "iproute2"), ("unshare", "util-linux"), ("hostname", "hostname"), ("socat", "socat"))
    for tool, package in tools:
        if shutil.which(tool) is None:
            return f"no `{tool}` on the PATH (Debian package {package})"
    if not Path(PG_SOCKET).exists():
        return f"no PostgreSQL socket at {PG_SOCKET} to give the services host"
    probe = f"fuprobe{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode:
        return f"`ip netns add` is not permitted here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def need_netns() -> None:
    reason = netns_unavailable()
    need("netns", reason is None, f"several hosts need network namespaces: {reason}")


def _enter(namespace: str) -> None:
    """Move the calling thread (only it) into `namespace`: sockets it opens from now on are there."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/run/netns/{namespace}") as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace}")


def _state(pid: str) -> str | None:
    """A process's state letter (R, S, Z, ...), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


def _procfile() -> dict[str, str]:
    return dict(parse_procfile((PROJECT_ROOT / "Procfile").read_text()).processes)


class Host:
    """One application host: a namespace, its address, the Procfile processes started on it."""

    def __init__(self, network: Network, name: str, address: str):
        self.network, self.name, self.address = network, name, address
        self.namespace = f"{network.tag}-{name}"
        self.switch_port = name  # its cable's end on the switch is named after it
        self.logs = network.workdir / name
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"http://{self.address}:{WEB_PORT}"

    def start(self, env: dict[str, str], *, beat: bool = False) -> Host:
        """The Procfile's lines, as written, each in a shell in this host's namespace (and UTS
        namespace: `hostname` is the host's name); `serving` says when its web answers."""
        self.env, self.beat = env, beat
        self.logs.mkdir(parents=True, exist_ok=True)
        lines = _procfile()
        for process in (*HOST_PROCESSES, *(("beat",) if beat else ())):
            own = dict(env, PROMETHEUS_MULTIPROC_DIR=str(self.logs / f"{process}-metrics"))
            Path(own["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
            out = open(self.logs / f"{process}.log", "ab")  # noqa: SIM115 - the child holds it
            self.processes[process] = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "sh", "-c",
                 'hostname "$0" && exec sh -c "$1"', self.name, lines[process]],
                cwd=PROJECT_ROOT, env=own, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            out.close()
        return self

    def serving(self) -> bool:
        return self.network.get(f"{self.url}/healthz")[0] == 200

    def alive(self) -> dict[str, int | None]:
        """Each process's exit code, None while it runs."""
        return {name: process.poll() for name, process in self.processes.items()}

    def pids(self) -> list[int]:
        """Every live process in the host's namespace (the Procfile's, their children, anything
        else); a zombie, dead but not yet reaped by its adoptive parent, is not one."""
        found = _ip("netns", "pids", self.namespace, check=False).stdout.split()
        return [int(pid) for pid in found if _state(pid) not in ("Z", "X", None)]

    def partition(self) -> None:
        """Pull the host's cable: its port on the switch goes down (its own side loses carrier)."""
        _ip("-n", self.network.switch, "link", "set", self.switch_port, "down")

    def heal(self) -> None:
        _ip("-n", self.network.switch, "link", "set", self.switch_port, "up")

    def kill(self) -> None:
        """SIGKILL to every process of the host, as a power cut or a kernel panic would end them."""
        for pid in self.pids():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes.values():
            process.wait(timeout=30)
        wait_for(lambda: not self.pids(), timeout=30, interval=0.05)

    def revive(self) -> None:
        """A host with a process gone (killed by a test) started again, as an operator would."""
        self.kill()
        self.start(self.env, beat=self.beat)

    def tail(self, lines: int = 15) -> str:
        """The end of each process's log, for a failing test's report."""
        parts = []
        for log in sorted(self.logs.glob("*.log")):
            parts.append(f"--- {self.name}/{log.name}")
            parts.extend(log.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(parts)


class Network:
    """The switch, the services host and `hosts` application hosts; a context manager that removes
    them all (processes, then namespaces) on the way out."""

    def __init__(self, workdir: Path, database_url: str, hosts: int = 2):
        self.workdir = Path(workdir)
        # Unique per network; the test process's id in it lets a later run remove what a run killed
        # before its teardown left behind (`remove_orphans`).
        self.tag = f"fu{os.getpid()}x{secrets.token_hex(2)}"
        self.switch, self.services = f"{self.tag}-sw", f"{self.tag}-svc"
        self.hosts = [Host(self, f"h{n}", f"{SUBNET}.{10 + n}") for n in range(1, hosts + 1)]
        self.database_url = database_url
        self.redis_socket = self.workdir / "redis.sock"
        self._stack = ExitStack()
        self._services: list[subprocess.Popen] = []
        self._client: ThreadPoolExecutor | None = None

    # --- what the hosts are given -----------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return f"redis://{SERVICES_ADDRESS}:{REDIS_PORT}/0"

    @property
    def host_database_url(self) -> str:
        """The test database's URL with the services host as its server."""
        parts = urlsplit(self.database_url)
        credentials, at, _ = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{credentials}{at}{SERVICES_ADDRESS}:{PG_PORT}"))

    def env(self, settings, **extra: str) -> dict[str, str]:
        """A host's environment: the suite's worker environment with the services host's addresses,
        the virtualenv's `gunicorn` and `celery` on the PATH, and the Procfile's sizes kept small."""
        env = worker_env(settings, **extra)
        env.update(
            DATABASE_URL=self.host_database_url,
            REDIS_URL=self.redis_url,
            PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
            PORT=str(WEB_PORT),
            WEB_CONCURRENCY="1",
            WORKER_CONCURRENCY="2",
            BACKGROUND_CONCURRENCY="1",
            WEBHOOK_CONCURRENCY="1",
            BEAT_SCHEDULE_FILE=str(self.workdir / "beat-schedule"),
        )
        env.pop("CELERY_BROKER_URL", None)
        return env

    # --- the test's client, in the switch's namespace ---------------------------------------------

    def request(self, method: str, url: str, body: dict | None = None, headers: dict | None = None):
        """An HTTP request from the switch's namespace: (status, decoded JSON or None); status 0
        when nothing answered."""
        return self._client.submit(_http, method, url, body, headers or {}).result()

    def get(self, url: str, headers: dict | None = None):
        return self.request("GET", url, None, headers)

    def at_once(self, method: str, url: str, bodies: list[dict], headers: dict) -> list[Future]:
        """One request per body, all sent at once from the switch's namespace (a thread each, so one
        left unanswered holds up no other): futures of what `request` returns."""
        pool = ThreadPoolExecutor(len(bodies), initializer=_enter, initargs=(self.switch,))
        try:
            return [pool.submit(_http, method, url, body, headers) for body in bodies]
        finally:
            pool.shutdown(wait=False)

    # --- making and removing it -------------------------------------------------------------------

    def __enter__(self) -> Network:
        remove_orphans()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stack.callback(self._remove_namespaces)
        try:
            self._make_links()
            self._start_services()
            self._client = ThreadPoolExecutor(4, initializer=_enter, initargs=(self.switch,))
            self._stack.callback(self._client.shutdown)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _make_links(self) -> None:
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "addr", "add", f"{CLIENT_ADDRESS}/24", "dev", "br0")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        _ip("-n", self.switch, "link", "set", "lo", "up")
        members = [("svc", self.services, SERVICES_ADDRESS)]
        members += [(host.switch_port, host.namespace, host.address) for host in self.hosts]
        for port, namespace, address in members:
            _ip("netns", "add", namespace)
            # A cable: `port` on the switch's bridge, `eth0` in the member's namespace.
            peer = ("peer", "name", "eth0", "netns", namespace)
            _ip("-n", self.switch, "link", "add", port, "type", "veth", *peer)
            _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            _ip("-n", namespace, "link", "set", "lo", "up")

    def _start_services(self) -> None:
        """PostgreSQL at the services host's address (socat to the machine's server's socket: the
        filesystem is shared), and a redis-server of this network's own there."""
        redis_dir = self.workdir / "redis"
        redis_dir.mkdir(exist_ok=True)
        self._service(
            "redis", redis_server_binary(), "--bind", SERVICES_ADDRESS, "--port", str(REDIS_PORT),
            "--unixsocket", str(self.redis_socket), "--dir", str(redis_dir), "--save", "",
            "--appendonly", "no", "--maxmemory-policy", "noeviction",
            # Only the namespaces made here reach this address; with no password, protected mode would
            # refuse every client not on its loopback.
            "--protected-mode", "no",
        )  # fmt: skip
        self._service(
            "postgres", "socat", f"TCP-LISTEN:{PG_PORT},bind={SERVICES_ADDRESS},reuseaddr,fork",
            f"UNIX-CONNECT:{PG_SOCKET}",
        )  # fmt: skip
        wait_for(self._redis_answers, timeout=20, interval=0.1)

    def _service(self, name: str, *command: str) -> None:
        out = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - the child holds it
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.services, *command],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        out.close()
        self._services.append(process)

    def _redis_answers(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.redis_socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def _remove_namespaces(self) -> None:
        for host in self.hosts:  # the test is over: no need to wait for a warm shutdown
            with suppress(Exception):
                host.kill()
        for process in self._services:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        for namespace in (*(host.namespace for host in self.hosts), self.services, self.switch):
            _ip("netns", "del", namespace, check=False)

    def start(self, env: dict[str, str]) -> None:
        """Every host's processes at once, beat on the first host only (a second beat doubles the
        sweeps' work, docs/operations/scaling.md); returns when every host's web answers."""
        for n, host in enumerate(self.hosts):
            host.start(env, beat=n == 0)
        for host in self.hosts:
            wait_for(host.serving, timeout=120, interval=0.3)

    def tail(self) -> str:
        return "\n".join(host.tail() for host in self.hosts)

    def flush(self) -> None:
        """Empty the services host's Redis (between tests, as the suite's `clean_state` does)."""
        redis.Redis(unix_socket_path=str(self.redis_socket)).flushdb()


def remove_orphans() -> None:
    """The namespaces (and their processes) of networks whose test process is gone: a run killed
    before its teardown. A running test's network is left alone."""
    listed = _ip("netns", "list", check=False).stdout.split()
    for name in listed:
        found = re.fullmatch(r"fu(\d+)x[0-9a-f]{4}-\w+", name)
        if not found or _state(found.group(1)) not in (None, "Z"):
            continue
        for pid in _ip("netns", "pids", name, check=False).stdout.split():
            with suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        _ip("netns", "del", name, check=False)


def _http(method: str, url: str, body: dict | None, headers: dict):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={**headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, _json(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, _json(error.read())
    except OSError:
        return 0, None


def _json(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return None
