"""Pure rules of outbound delivery: how long to wait before the next attempt, when to give up, and
what a provider rate limit written by a clinic admin says ("200/hour")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from limits import RateLimitItem, parse_many

# The backoff is multiplied by a factor drawn in [low, high): jitter spreads a burst of failures (a
# provider or receiver outage) so the retries do not arrive in lockstep.
HALF_TO_ONE_AND_A_HALF = (0.5, 1.5)

FAILED, EXHAUSTED, RETRY = "failed", "exhausted", "retry"


def backoff_seconds(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: float,
    spread: tuple[float, float] = HALF_TO_ONE_AND_A_HALF,
) -> float:
    """Seconds before attempt `attempt + 1`: base * 2**(attempt-1), capped, times low + (high-low) * `jitter`
    (`jitter` in 0..1, `spread` = (low, high))."""
    low, high = spread
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * (low + (high - low) * jitter)


@dataclass(frozen=True)
class RetryPolicy:
    """How one kind of message is retried (from settings)."""

    max_attempts: int
    base_seconds: float
    cap_seconds: float
    spread: tuple[float, float] = HALF_TO_ONE_AND_A_HALF


@dataclass(frozen=True)
class Step:
    """What follows a failed attempt: FAILED (permanent error), EXHAUSTED (attempts ran out) or RETRY
    after `delay` seconds."""

    kind: str
    delay: float | None = None


def after_failure(policy: RetryPolicy, attempts: int, *, permanent: bool, jitter: float) -> Step:
    """The step after attempt number `attempts` failed: a permanent error is never retried."""
    if permanent:
        return Step(FAILED)
    if attempts >= policy.max_attempts:
        return Step(EXHAUSTED)
    delay = backoff_seconds(
        attempts, base=policy.base_seconds, cap=policy.cap_seconds, jitter=jitter, spread=policy.spread
    )
    return Step(RETRY, delay)


MAX_AMOUNT = 1_000_000
MAX_WINDOW = timedelta(days=1)


def parse_limit(text: str) -> RateLimitItem:
    """One limit ("200/hour", "50 per 10 minutes"); a ValueError saying why it is not one."""
    try:
        items = parse_many(text) if isinstance(text, str) and len(text) <= 64 else []
    except ValueError:
        items = []
    if len(items) != 1:
        raise ValueError('give one limit such as "200/hour" or "50 per 10 minutes"')
    item = items[0]
    if not 1 <= item.amount <= MAX_AMOUNT:
        raise ValueError(f"the number of messages must be from 1 to {MAX_AMOUNT}")
    if timedelta(seconds=item.get_expiry()) > MAX_WINDOW:
        raise ValueError("the window may be at most a day")
    return item
