"""The stream process for tests (uvicorn as the Procfile starts it, on a free port) and a client that
reads a stream as a browser's EventSource would (httpx-sse), in a thread of its own."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager

import httpx
from httpx_sse import connect_sse

from app.devtools.local_redis import free_port
from tests.leadkit import set_user
from tests.workers import PROJECT_ROOT, wait_for, worker_env


def only_assignee(app, tenant, role: str) -> int:
    """Make `role`'s user the one new leads go to (the other roles that take work are out of office)."""
    for other in ("clinic_admin", "treatment_coordinator", "front_desk"):
        set_user(app, tenant.users[other].id, out_of_office=other != role)
    return tenant.users[role].id


@contextmanager
def stream_process(settings, subscribed: bool = True, **extra_env: str):
    """`uvicorn --factory app.streaming:create_stream_app` as a child process; yields its base URL
    once it answers /healthz with its Redis subscription up (`subscribed` False: once it answers)."""
    port = free_port()
    args = [
        sys.executable, "-m", "uvicorn", "--factory", "app.streaming:create_stream_app",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--timeout-graceful-shutdown", "2",
    ]  # fmt: skip
    process = subprocess.Popen(
        args, cwd=PROJECT_ROOT, env=worker_env(settings, **extra_env), start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _subscribed(base, process, subscribed), timeout=60, interval=0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _subscribed(base: str, process, subscribed: bool = True) -> bool:
    assert process.poll() is None, "the stream process exited"
    try:
        return httpx.get(f"{base}/healthz", timeout=2).json()["status"] == "ok" or not subscribed
    except (httpx.HTTPError, ValueError):
        return False


class StreamReader:
    """One open stream: every event read, in order, as {"id", "event", "data"} (data decoded)."""

    def __init__(self, url: str, headers: dict | None = None):
        self.url, self.headers = url, headers or {}
        self.events: list[dict] = []
        self.status: int | None = None
        self._opened = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self):
        self._thread.start()
        self.status = self._opened.get(timeout=30)
        return self

    def _read(self) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        try:
            with connect_sse(self._client, "GET", self.url, headers=self.headers) as source:
                self.answer = source.response
                self._opened.put(source.response.status_code)
                if source.response.status_code != 200:
                    source.response.read()
                    return
                for sse in source.iter_sse():
                    if not sse.data:
                        # A heartbeat comment after an event: httpx-sse yields it with the last id,
                        # where EventSource dispatches nothing (an empty data buffer).
                        continue
                    self.events.append({"id": sse.id, "event": sse.event, "data": json.loads(sse.data)})
        except Exception:  # the test closed it (a dropped stream), or the connection failed
            self._opened.put(None)

    def wait_for(self, predicate, timeout: float = 30):
        """The first event `predicate` holds for (waiting for it)."""
        return wait_for(lambda: next((e for e in list(self.events) if predicate(e)), None), timeout=timeout)

    def ended_within(self, seconds: float) -> bool:
        """Whether the server ended the stream (the reader saw its end) within `seconds`."""
        self._thread.join(timeout=seconds)
        return not self._thread.is_alive()

    def __exit__(self, *exc):
        """Drop the connection, as a closed tab or a lost network would (a shutdown wakes the reader)."""
        answer = getattr(self, "answer", None)
        if answer is not None:
            with contextlib.suppress(OSError):
                answer.extensions["network_stream"].get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        self._client.close()
        self._thread.join(timeout=10)
