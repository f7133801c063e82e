"""Posting a webhook delivery, once per attempt, outside any transaction (as notifications send):
  1. the `webhook.deliver` job claims the delivery (pending → sending, attempts + 1); the claim
     commits with the job's `done`, so a redelivered job finds it taken and does nothing;
  2. after that commit the signed payload is POSTed, no transaction open;
  3. a second short transaction records the outcome by compare-and-set on (sending, attempts):
     delivered, or back to pending with a new job after a backoff, or failed.
A commit failure can no longer re-send a POST the receiver took. A worker that dies between 1 and 3
leaves the row `sending`; `recover_stuck_deliveries` re-sends it later: the receiver dedupes on the
Idempotency-Key header (the delivery id, the same on every attempt).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa

from app.domains.webhooks import slots
from app.domains.webhooks.models import DELIVERED, FAILED, PENDING, WebhookDelivery, WebhookSubscription
from app.domains.webhooks.service import DELIVER_KIND, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign
from app.platform import clock as app_clock
from app.platform.db import UnitOfWork
from app.platform.delivery import addresses
from app.platform.delivery import rules as delivery_rules
from app.platform.delivery import service as outbound
from app.platform.scheduling import service as scheduling


@dataclass(frozen=True)
class Outgoing:
    delivery_id: int
    url: str
    body: bytes
    headers: dict


_DELIVERIES = WebhookDelivery.__table__
_SUBSCRIPTIONS = WebhookSubscription.__table__
log = logging.getLogger(__name__)


# The claim (app/platform/delivery): only while the subscription is active; one built statement.
_CLAIM = outbound.claim_statement(
    _DELIVERIES,
    [_DELIVERIES.c.id, _DELIVERIES.c.subscription_id, _DELIVERIES.c.event_type, _DELIVERIES.c.payload,
     _DELIVERIES.c.attempts],
    where=[
        sa.exists().where(
            _SUBSCRIPTIONS.c.id == _DELIVERIES.c.subscription_id, _SUBSCRIPTIONS.c.active.is_(True)
        )
    ],
)  # fmt: skip


_UNSUBSCRIBED = (
    sa.update(_DELIVERIES)
    .where(_DELIVERIES.c.id == sa.bindparam("row_id"), _DELIVERIES.c.status == PENDING)
    .values(status=FAILED, last_error="subscription deleted")
)


def deliver(*, session: UnitOfWork, job, now: datetime) -> Callable[[], object] | None:
    """The job handler: take one of the clinic's slots and claim the delivery; what the runner
    calls once the claim commits: the POST, whose outcome is recorded in a unit of work of its own
    (on `session.database`, whose Redis holds the slots). With the clinic's slots all held, the
    delivery waits its turn."""
    db = session.database
    slot = slots.take(db.redis, clinic_id=job.clinic_id, settings=db.settings)
    if slot is None:
        slots.wait_for_one(session, job, kind=DELIVER_KIND, now=now, settings=db.settings)
        return None
    claimed = outbound.claim(session, _CLAIM, job.subject_id, now)
    if claimed is None:
        slots.give_back(db.redis, clinic_id=job.clinic_id, token=slot)
        # Delivered, being sent, or given up: a duplicate or stale job does nothing. Still pending:
        # its subscription was deleted.
        session.connection().execute(_UNSUBSCRIBED, {"row_id": job.subject_id})
        return None
    sub = session.get(WebhookSubscription, claimed.subscription_id)
    outgoing = _outgoing(claimed, sub, now)
    return partial(
        post_claimed,
        db=db,
        outgoing=outgoing,
        attempt=claimed.attempts,
        slot=(job.clinic_id, slot),
    )


def _outgoing(delivery, sub: WebhookSubscription, now: datetime) -> Outgoing:
    """The signed POST of a claimed delivery (`delivery`: its id, event_type and payload)."""
    body = json.dumps({"id": delivery.id, **delivery.payload}, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "followup-engine-webhooks/1",
        "X-Followup-Event": delivery.event_type,
        "X-Followup-Delivery": str(delivery.id),
        IDEMPOTENCY_HEADER: f"delivery-{delivery.id}",
        SIGNATURE_HEADER: sign(secret=sub.secret, timestamp=int(now.timestamp()), body=body),
    }
    return Outgoing(delivery_id=delivery.id, url=sub.url, body=body, headers=headers)


def post_claimed(
    *, db, outgoing: Outgoing, attempt: int, slot: tuple[int, str] | None = None, clock=app_clock.now
) -> str:
    """POST a claimed delivery (no transaction open), then record the outcome and give back the
    clinic's slot (`slot`: clinic id and token); never raises.

    `clock` stamps the outcome: the POST takes real time, and a backoff dates from its end.
    """
    try:
        return _post_and_record(db=db, outgoing=outgoing, attempt=attempt, clock=clock)
    finally:
        if slot is not None:
            slots.give_back(db.redis, clinic_id=slot[0], token=slot[1])


def _post_and_record(*, db, outgoing: Outgoing, attempt: int, clock) -> str:
    settings = db.settings
    response_status, error, permanent = None, None, False
    try:
        response_status = addresses.post(
            outgoing.url,
            body=outgoing.body,
            headers=outgoing.headers,
            deadline=settings.webhook_deadline_seconds,
            allow_private=settings.webhook_allow_private_addresses,
        )
        if not 200 <= response_status < 300:
            error = f"receiver answered {response_status}"
    except addresses.AddressRefused as exc:
        error, permanent = f"the receiver {addresses.UNREACHABLE}", True
        log.info("webhook delivery %s refused: %s", outgoing.delivery_id, exc)
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, timeout, DNS, bad answer
        # One text whatever it was (app/platform/delivery/addresses.py): no probe of the network.
        error = f"the receiver {addresses.UNREACHABLE}"
        log.info("webhook delivery %s not delivered: %s: %s", outgoing.delivery_id, type(exc).__name__, exc)
    except Exception as exc:  # a bug: retried like a network error, and failed if it persists
        log.exception("webhook delivery %s failed unexpectedly", outgoing.delivery_id)
        error = f"{type(exc).__name__}: {exc}"
    return outbound.settle(
        partial(
            _record,
            outcome=PostOutcome(outgoing.delivery_id, attempt, response_status, error, permanent),
            settings=settings,
        ),
        db=db,
        clock=clock,
        what=f"webhook delivery {outgoing.delivery_id}",
    )  # unrecorded: the row stays `sending`; recover_stuck_deliveries re-sends it (the receiver dedupes)


@dataclass(frozen=True)
class PostOutcome:
    """How one POST of a delivery went: the receiver's status, or the `error` (`permanent`: not
    worth retrying); `attempt`: the row's attempts after its claim."""

    delivery_id: int
    attempt: int
    response_status: int | None
    error: str | None
    permanent: bool


def _record(session: UnitOfWork, now: datetime, outcome: PostOutcome, settings) -> str:
    return record_outcome(
        session=session, outcome=outcome, now=now, jitter=random.random(), settings=settings
    )


def record_outcome(
    *, session: UnitOfWork, outcome: PostOutcome, now: datetime, jitter: float, settings
) -> str:
    """Write one attempt's outcome if the row is still that attempt's (`sending`, same attempts)."""
    delivery_id, attempt, response_status = outcome.delivery_id, outcome.attempt, outcome.response_status
    error, permanent = outcome.error, outcome.permanent
    if error is None:
        params = {"now": now, "response_status": response_status}
        if outbound.settled(session, _RECORD_DELIVERED, delivery_id, attempt, **params):
            return DELIVERED  # last_error stays: the history shows it
        return "stale"
    delivery = outbound.locked_attempt(session, WebhookDelivery, delivery_id, attempt)
    if delivery is None:
        return "stale"
    delivery.response_status = response_status
    return _retry_or_fail(
        session, delivery, outbound.Failure(error, permanent), now=now, jitter=jitter, settings=settings
    )


_RECORD_DELIVERED = outbound.settled_statement(
    _DELIVERIES,
    status=DELIVERED,
    delivered_at=sa.bindparam("now", type_=_DELIVERIES.c.delivered_at.type),
    response_status=sa.bindparam("response_status"),
)


def _retry_policy(settings) -> delivery_rules.RetryPolicy:
    return delivery_rules.RetryPolicy(
        max_attempts=settings.webhook_max_attempts,
        base_seconds=settings.webhook_retry_base_seconds,
        cap_seconds=settings.webhook_retry_max_seconds,
        spread=(1.0, 1.25),  # never sooner than the backoff: receivers were promised at least it
    )


def _retry_or_fail(
    session: UnitOfWork,
    delivery: WebhookDelivery,
    failure: outbound.Failure,
    *,
    now: datetime,
    jitter: float,
    settings,
) -> str:
    due = outbound.give_up_or_retry(
        delivery,
        _retry_policy(settings),
        failure,
        now=now,
        jitter=jitter,
        dead=FAILED,  # a webhook that ran out of attempts is simply failed
    )
    if due is None:
        log.warning("webhook delivery %s failed: %s", delivery.id, delivery.last_error)
        return FAILED
    _schedule_attempt(session, delivery, due_at=due, now=now)
    return "retrying"


def _schedule_attempt(
    session: UnitOfWork, delivery: WebhookDelivery, *, due_at: datetime, now: datetime
) -> None:
    ledger_job = scheduling.Job(
        kind=DELIVER_KIND,
        due_at=due_at,
        dedupe_key=f"webhook-delivery:{delivery.id}:try:{delivery.attempts + 1}",
        now=now,
        clinic_id=delivery.clinic_id,
        subject_type="webhook_delivery",
        subject_id=delivery.id,
    )
    session.schedule(ledger_job)
    job = scheduling.row_of(session, ledger_job)
    delivery.job_id = job.id


def recover_stuck_deliveries(*, db, now: datetime) -> int:
    """The beat sweep: deliveries left `sending` by a worker that died mid-POST are sent again.
    `db`: the app's Database (its settings with it)."""
    settings = db.settings
    cutoff = now - timedelta(seconds=settings.webhook_stuck_seconds)
    with db.unit_of_work() as session:
        stuck = outbound.stuck(session, WebhookDelivery, cutoff=cutoff)
        for delivery in stuck:
            _retry_or_fail(
                session,
                delivery,
                outbound.Failure(
                    "worker stopped mid-send; sent again with the same Idempotency-Key", permanent=False
                ),
                now=now,
                jitter=0.0,
                settings=settings,
            )
    if stuck:
        log.warning("re-sent %d webhook deliveries stuck in sending", len(stuck))
    return len(stuck)
