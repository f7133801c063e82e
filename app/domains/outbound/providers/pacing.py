"""Each sender's pace at its provider: a message waits for its sender's next slot before it is handed
over (FOLLOWUP_EMAIL_SENDER_RATE, FOLLOWUP_SMS_SENDER_RATE; unset: no pace).

A provider takes a sender's messages at its own pace: a Twilio long-code number about one a second (a
Messaging Service more), an SMTP relay what its plan allows. Sent faster, it answers errors (each one
retried with backoff) or queues them out of sight. The sender is, for email, the relay
(SMTP_HOST:SMTP_PORT, one for the deployment) and, for SMS, the message's From number or Messaging
Service SID: one sender's pace never holds another's messages back.

Every worker process counts a sender's sends in one moving window in Redis (the `limits` library's
MovingWindowRateLimiter: never more than N in any window, where a fixed window lets 2N through across
its boundary). A send takes a slot (`hit`); refused, it sleeps until the window's oldest send leaves it
(`get_window_stats(...).reset_time`), then tries again. A pace's window is at most a minute
(app/platform/delivery/rules.py), so the wait stays well within a task's time limit; a clinic's
provider rate limits, over hours, wait in the ledger instead (worker/rate_limits.py).

The provider counts arrivals at its end, later than the slot was taken by a request's trip, which
varies (a new connection, a busy worker). So within a process, whose threads take a sender's slots one
at a time, a message counts from its answer, not from its slot: the next slot N messages on is taken
SLACK_SECONDS after that answer and the window's length, when the message has surely arrived; and
between processes, a slot found taken is taken again SLACK_SECONDS after the window frees it.

With Redis unreachable, messages go out unpaced rather than not at all (a warning, without the sender).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.domains.outbound.providers.transport import Outgoing
from app.platform.delivery.rules import MAX_PACE_WINDOW, parse_limit
from app.platform.redis_clients import limiter_storage

log = logging.getLogger(__name__)

KEY_PREFIX = "followup-pace"
SLACK_SECONDS = 0.05  # a request's trip to the provider, and how much it varies (see above)
_HISTORY = 1000  # the slots of a sender a process remembers; and the senders, before it forgets old ones
# After Redis failed, messages go unpaced this long before it is asked again: a Redis that does not
# answer would cost every send its connect timeout.
OUTAGE_SECONDS = 30.0
_SKIPPED_ERRORS = (redis.RedisError, StorageError, OSError)


@contextmanager
def slot(message: Outgoing, settings, pacers: Pacers) -> Iterator[None]:
    """Wait for the next slot of the message's sender (at once when its channel has no pace, or Redis
    is unreachable), then hand the message over in the block: its end is the provider's answer."""
    if message.channel == "email":
        rate, sender = settings.email_sender_rate, f"{settings.smtp_host}:{settings.smtp_port}"
    else:
        rate, sender = settings.sms_sender_rate, message.sender
    taken = None if rate is None else pacers.of(settings).take(_limit(rate), (message.channel, sender))
    try:
        yield
    finally:
        if taken is not None:
            taken.at = time.time()  # answered, or failed: it has arrived by now if ever


@functools.lru_cache(maxsize=16)
def _limit(rate: str) -> RateLimitItem:
    return parse_limit(rate)  # checked when the settings were loaded (config.validate)


class Pacers:
    """An engine's pacers (app/bootstrap.py Caches.pacers): one by process and Redis (a forked child
    builds its own: its parent's connections and locks are not its to use). Handed down from the
    delivery that sends (worker/attempts.py, worker/batches.py) through the send to `slot`."""

    def __init__(self):
        self._pacers: dict[tuple, _Pacer] = {}
        self._lock = threading.Lock()

    def of(self, settings) -> _Pacer:
        key = (os.getpid(), settings.redis_url, settings.redis_sentinel_master)
        with self._lock:
            if key not in self._pacers:
                self._pacers[key] = _Pacer(settings)
            return self._pacers[key]

    def clear(self) -> None:
        with self._lock:
            self._pacers.clear()


@dataclass
class _Slot:
    at: float  # (wall clock) when it was taken; once the message is answered, when it was


class _Window:
    """What a process knows of one sender's window: the slots its threads took, latest last."""

    def __init__(self, amount: int):
        self.amount = amount
        self.lock = threading.Lock()  # the process's threads take the sender's slots one at a time
        self.taken: deque[_Slot] = deque(maxlen=min(amount, _HISTORY))

    def ready_at(self, expiry: float) -> float:
        """When the process may take the next slot: a window and SLACK after its message N slots back
        was answered (a pace of more than _HISTORY: only the refusals below)."""
        if len(self.taken) < self.amount:
            return 0.0
        return self.taken[0].at + expiry + SLACK_SECONDS


class _Pacer:
    """One process's limiter on Redis, shared by its threads (redis-py's connection pool is
    thread-safe; each sender's window has its lock).

    The clock is the wall clock (time.time, time.sleep), not app.platform.clock: this paces real I/O
    against a provider's real clock, and the window's entries in Redis carry each worker's wall time
    (the `limits` library's own), so hosts keep their clocks in step (NTP) as they do for TLS."""

    def __init__(self, settings):
        # limits' storage for REDIS_URL: its Sentinel storage for a sentinel:// URL, the app's timeouts.
        uri, options = limiter_storage(settings.redis_url, settings)
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri, key_prefix=KEY_PREFIX, **options))
        self.lock = threading.Lock()
        self.windows: dict[str, _Window] = {}  # by the window's key in Redis
        self.unpaced_until = 0.0  # (time.monotonic) after Redis failed

    def take(self, limit: RateLimitItem, key: tuple[str, str]) -> _Slot | None:
        """A slot of the sender's window, once there is one; None: Redis is unreachable."""
        if time.monotonic() < self.unpaced_until:
            return None
        window = self._window(limit, key)
        try:
            with window.lock:
                if time.monotonic() < self.unpaced_until:  # Redis failed another thread meanwhile
                    return None
                return self._take(limit, key, window)
        except _SKIPPED_ERRORS as error:
            self.unpaced_until = time.monotonic() + OUTAGE_SECONDS
            # Never the sender (a clinic's number) nor anything of the message.
            log.warning(
                "%s messages go out unpaced for %.0f s: the sender pace's Redis is unreachable (%s)",
                key[0],
                OUTAGE_SECONDS,
                type(error).__name__,
            )
            return None

    def _take(self, limit: RateLimitItem, key: tuple[str, str], window: _Window) -> _Slot:
        expiry, opens = limit.get_expiry(), 0.0
        while True:
            ready = max(window.ready_at(expiry), opens)
            # At most a window: another host's clock ahead of this one's must not hold a send longer.
            time.sleep(min(max(0.0, ready - time.time()), expiry + SLACK_SECONDS))
            if self.limiter.hit(limit, *key):
                window.taken.append(taken := _Slot(time.time()))
                return taken
            stats = self.limiter.get_window_stats(limit, *key)
            # Full (other processes took the slots): one opens as the window's oldest send leaves it.
            # Else the oldest left between the two calls: try again at once.
            opens = stats.reset_time + SLACK_SECONDS if stats.remaining == 0 else 0.0

    def _window(self, limit: RateLimitItem, key: tuple[str, str]) -> _Window:
        name = limit.key_for(*key)
        with self.lock:
            if name not in self.windows:
                if len(self.windows) >= _HISTORY:  # many senders: forget those whose windows are long past
                    stale = time.time() - MAX_PACE_WINDOW.total_seconds() - SLACK_SECONDS
                    self.windows = {
                        k: w for k, w in self.windows.items() if w.taken and w.taken[-1].at > stale
                    }
                self.windows[name] = _Window(limit.amount)
            return self.windows[name]
