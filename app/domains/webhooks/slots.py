"""A clinic's deliveries being sent at once, capped: leases in Redis, one sorted set per clinic.

Without a cap, one clinic's slow receiver and a burst of its events take every webhook worker
until each attempt reaches its deadline, and every other clinic's deliveries wait behind them.
A delivery takes a slot before its claim and gives it back once its outcome is recorded; one that
finds none waits (`wait_for_one`). A slot is a lease (a member scored with its expiry, on Redis'
clock): a worker that dies mid-send holds it only until the lease ends. Leases outlast a whole
attempt (the deadline, then the outcome written), so a live delivery never loses its slot.
"""

from __future__ import annotations

import logging
import random
import secrets
from datetime import datetime, timedelta

import redis as redis_lib

from app.domains.webhooks.models import PENDING, WebhookDelivery
from app.platform.db import UnitOfWork
from app.platform.scheduling import service as scheduling

log = logging.getLogger(__name__)

UNCAPPED = "uncapped"  # the slot of a delivery that runs without the cap (no Redis to count on)


def key(clinic_id: int) -> str:
    return f"followup:webhook-slots:{clinic_id}"


def lease_seconds(settings) -> float:
    return 2 * settings.webhook_deadline_seconds + 1


# KEYS[1]: the clinic's leases; ARGV: the new lease's token, the cap, the lease in milliseconds.
# 1 if the lease was taken, 0 if the clinic's slots are all held.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


def take(redis, *, clinic_id: int, settings) -> str | None:
    """A slot of the clinic's (its token), or None when the clinic has
    `webhook_max_concurrent_per_clinic` deliveries in flight already.

    Redis unreachable: the delivery runs uncapped rather than waits (the cap shares the workers
    out; it guards nothing that must not happen)."""
    if redis is None:
        return UNCAPPED
    token = secrets.token_hex(8)
    lease_ms = int(lease_seconds(settings) * 1000)
    try:
        taken = redis.register_script(_TAKE)(
            keys=[key(clinic_id)], args=[token, settings.webhook_max_concurrent_per_clinic, lease_ms]
        )
    except redis_lib.RedisError as exc:
        log.warning("webhook slots of clinic %s not counted (Redis: %s); sending uncapped", clinic_id, exc)
        return UNCAPPED
    return token if taken else None


def give_back(redis, *, clinic_id: int, token: str | None) -> None:
    """End a lease early (the delivery's outcome is recorded, or it was not claimed after all)."""
    if redis is None or token is None or token == UNCAPPED:
        return
    try:
        redis.zrem(key(clinic_id), token)
    except redis_lib.RedisError as exc:  # the lease ends on its own
        log.warning("webhook slot of clinic %s not given back (Redis: %s)", clinic_id, exc)


def wait_for_one(session: UnitOfWork, job, *, kind: str, now: datetime, settings) -> None:
    """Look again later (a new ledger row, no attempt spent), if the delivery is still pending.

    The longer a delivery has waited, the less often it looks (a quarter of its age), so a clinic's
    backlog behind a slow receiver costs the workers a few looks per delivery, not one every few
    seconds each; jittered, so the waiting deliveries do not all look at once."""
    delivery = session.get(WebhookDelivery, job.subject_id)
    if delivery is None or delivery.status != PENDING or delivery.job_id != job.id:
        return  # sent, given up, or another job has it: nothing to wait for
    age = (now - delivery.created_at).total_seconds()
    wait = max(settings.webhook_busy_retry_seconds, age / 4) * (1 + random.random() / 2)
    wait = min(wait, settings.webhook_retry_max_seconds)
    ledger_job = scheduling.Job(
        kind=kind,
        due_at=now + timedelta(seconds=wait),
        dedupe_key=f"webhook-delivery:{delivery.id}:after-job:{job.id}",
        now=now,
        clinic_id=delivery.clinic_id,
        subject_type="webhook_delivery",
        subject_id=delivery.id,
    )
    session.schedule(ledger_job)
    new = scheduling.row_of(session, ledger_job)
    delivery.job_id, delivery.next_attempt_at = new.id, new.due_at
