"""Leads captured at a steady pace by a plain client, as an integrator's code sends them: a new
connection for each request (`Connection: close`), one try, no retry. What it is left with is what
its user sees: a reset or refused connection counts as much as a 5xx.
"""

from __future__ import annotations

import collections
import http.client
import itertools
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def post_lead(port: int, token: str, n: int, prefix: str) -> int:
    """POST /api/leads once on a connection of its own; the answer's status (an error is raised)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            "POST",
            "/api/leads",
            body=json.dumps({"first_name": f"{prefix}{n}", "last_name": "Load"}),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"{prefix}-{n}",
                "Connection": "close",
            },
        )
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


class SteadyLoad:
    """`capture(n)` called `rate` times a second, at most `senders` in flight (a stack slower than
    the pace, on a busy machine, slows the sender down rather than piling up captures). Each call's
    outcome is kept: its status, or the name of the error the client got instead."""

    def __init__(self, capture: Callable[[int], int], rate: float, senders: int = 16):
        self.capture, self.rate_asked = capture, rate
        self.stop, self.sent = threading.Event(), 0
        self.lock = threading.Lock()
        self.outcomes: dict[int, int | str] = {}  # lead number → status, or the client's error
        self.free = threading.Semaphore(senders)
        self.pool = ThreadPoolExecutor(senders, thread_name_prefix="lead")
        self.thread = threading.Thread(target=self._pace, name="pace", daemon=True)
        self.began = self.ended = 0.0

    def __enter__(self) -> SteadyLoad:
        self.began = time.monotonic()
        self.thread.start()
        return self

    def _pace(self) -> None:
        for n in itertools.count():
            if self.stop.wait(max(0.0, self.began + n / self.rate_asked - time.monotonic())):
                return
            while not self.free.acquire(timeout=0.5):
                if self.stop.is_set():
                    return
            self.pool.submit(self._capture, n)
            self.sent = n + 1

    def _capture(self, n: int) -> None:
        try:
            outcome: int | str = self.capture(n)
        except (OSError, http.client.HTTPException) as exc:  # reset, refused, cut before an answer
            outcome = f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.outcomes[n] = outcome
        self.free.release()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.pool.shutdown(wait=True)  # at most `senders` captures still in flight
        self.ended = time.monotonic()

    @property
    def rate(self) -> float:
        return self.sent / max(self.ended - self.began, 1e-9)

    def answered(self) -> int:
        with self.lock:
            return len(self.outcomes)

    def tally(self) -> collections.Counter:
        """How many of each outcome (201, a 5xx, "ConnectionResetError: ...")."""
        with self.lock:
            return collections.Counter(
                o if isinstance(o, int) else o.split(":")[0] for o in self.outcomes.values()
            )

    def not_created(self) -> dict[int, int | str]:
        with self.lock:
            return {n: o for n, o in sorted(self.outcomes.items()) if o != 201}
