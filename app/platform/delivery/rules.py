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

# What may hold a message back for a while, as its answers name it (`held_by`): the recipient's quiet
# hours, the pace of messages (an interval, a touch gap, a provider's rate limit), a daily cap.
QUIET_HOURS, PACING, DAILY_CAP = "quiet_hours", "pacing", "daily_cap"
HOLD_REASONS = (QUIET_HOURS, PACING, DAILY_CAP)


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


# A sender's pace is waited for in a worker, before each send (app/domains/outbound/providers/pacing.py):
# for up to a window, well within a task's time limit. A quota over a longer window is a clinic's
# provider rate limit, which waits in the ledger instead.
MAX_PACE_WINDOW = timedelta(minutes=1)
SENDER_RATES = ("FOLLOWUP_EMAIL_SENDER_RATE", "FOLLOWUP_SMS_SENDER_RATE")


def pace_problem(text: str) -> str | None:
    """What makes `text` no sender's pace ("10/second", "1 per second"), or None: one limit over a
    window of at most a minute."""
    try:
        item = parse_limit(text)
    except ValueError as error:
        return str(error)
    if timedelta(seconds=item.get_expiry()) > MAX_PACE_WINDOW:
        return "a pace is per second or per minute; a longer quota is a clinic's provider_rate_limits"
    return None


def sender_rates_problem(email_rate: str | None, sms_rate: str | None) -> str | None:
    """What makes FOLLOWUP_EMAIL_SENDER_RATE or FOLLOWUP_SMS_SENDER_RATE unusable, naming it (None:
    nothing; unset is no pace)."""
    for variable, text in zip(SENDER_RATES, (email_rate, sms_rate), strict=True):
        if text is not None and (problem := pace_problem(text)):
            return f'{variable} must be a pace such as "10/second": {problem}'
    return None
