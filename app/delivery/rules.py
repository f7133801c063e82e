"""Pure rules of outbound delivery: how long to wait before the next attempt, and when to give up."""

from __future__ import annotations

from dataclasses import dataclass

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
