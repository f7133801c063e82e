"""Outbound webhooks: subscriptions, one delivery per (subscription, event), signed, retried by the ledger.

An event consumer writes a delivery row and its `webhook.deliver` ledger job in the event's
processing transaction. The job claims the delivery; the signed payload is POSTed after that claim
commits and the outcome is recorded in a transaction of its own (see "delivery" below); a non-2xx
answer, a network error or an exchange cut at settings.webhook_deadline_seconds schedules the next
attempt with exponential backoff, up to settings.webhook_max_attempts. A clinic has at most
settings.webhook_max_concurrent_per_clinic deliveries being sent at once (slots.py): the others
wait their turn. Receivers
deduplicate on the Idempotency-Key header (also X-Followup-Delivery): a timeout after the receiver
got the request, or a worker dying mid-send, makes a second attempt.

Signature: `X-Followup-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.

Payloads carry ids and states, never PHI (app/auth/phi_policy.py): a subscriber fetches a lead's
details with an API key, whose `lead:phi` the clinic's admin grants and whose reads are audited.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import clock as app_clock
from app.audit import service as audit
from app.auth import phi_policy
from app.auth.models import Clinic
from app.auth.roles import Actor
from app.db import page_offset
from app.delivery import rules as delivery_rules
from app.delivery import service as outbound
from app.errors import Conflict, NotFound, ValidationFailed
from app.scheduling import service as scheduling
from app.scheduling.models import GAVE_UP as JOB_GAVE_UP
from app.scheduling.models import ScheduledJob
from app.webhooks import addresses, slots
from app.webhooks.models import DELIVERED, FAILED, PENDING, WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)

DELIVER_KIND = "webhook.deliver"
SIGNATURE_HEADER = "X-Followup-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# --- subscriptions --------------------------------------------------------------------------------


def create_subscription(*, session: Session, actor: Actor, data: dict, now: datetime, settings) -> dict:
    """A subscription with a fresh secret, returned only in this answer; a clinic has at most
    settings.webhook_max_subscriptions_per_clinic (each may hold the clinic's delivery slots)."""
    try:
        addresses.check_url(
            data["url"],
            allow_private=settings.webhook_allow_private_addresses,
            timeout=settings.webhook_deadline_seconds,
        )
    except addresses.AddressRefused as refused:
        raise ValidationFailed(
            "url", f"webhooks may not post to private or reserved addresses: {refused}"
        ) from None
    limit = settings.webhook_max_subscriptions_per_clinic
    # The clinic's row, locked (not its key: leads and the rest still reference it) until the commit,
    # after the URL's lookup: two creates at once count in turn, so neither makes one past the limit.
    session.execute(sa.select(Clinic.id).where(Clinic.id == actor.clinic_id).with_for_update(key_share=True))
    if _subscription_count(session, actor.clinic_id) >= limit:
        raise Conflict(f"a clinic may have at most {limit} webhook subscriptions; delete one to add another")
    secret = "whsec_" + secrets.token_urlsafe(32)
    sub = WebhookSubscription(
        clinic_id=actor.clinic_id,
        url=data["url"],
        event_types=sorted(set(data["event_types"])),
        secret=secret,
        description=data.get("description"),
        active=True,
        created_by=actor.ref,
        created_at=now,
    )
    session.add(sub)
    session.flush()
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="webhook.create",
        subject_type="webhook",
        subject_id=sub.id,
        after={"url": sub.url, "event_types": sub.event_types},
        at=now,
    )
    shown = ("id", "url", "event_types", "description", "active", "created_at")
    return {**{c: getattr(sub, c) for c in shown}, "secret": secret}


def _subscription_count(session: Session, clinic_id: int) -> int:
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(WebhookSubscription)
        .where(WebhookSubscription.clinic_id == clinic_id, WebhookSubscription.deleted_at.is_(None))
    )


def list_subscriptions(*, session: Session, clinic_id: int) -> list[WebhookSubscription]:
    return list(
        session.scalars(
            sa.select(WebhookSubscription)
            .where(WebhookSubscription.clinic_id == clinic_id, WebhookSubscription.deleted_at.is_(None))
            .order_by(WebhookSubscription.id)
        )
    )


def get_subscription(*, session: Session, clinic_id: int, subscription_id: int) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None or sub.clinic_id != clinic_id or sub.deleted_at is not None:
        raise NotFound(f"webhook {subscription_id} not found")
    return sub


def delete_subscription(*, session: Session, actor: Actor, subscription_id: int, now: datetime) -> None:
    """Stop a subscription; its pending deliveries are dropped (their jobs find it inactive)."""
    sub = get_subscription(session=session, clinic_id=actor.clinic_id, subscription_id=subscription_id)
    sub.active, sub.deleted_at = False, now
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="webhook.delete",
        subject_type="webhook",
        subject_id=sub.id,
        at=now,
    )


def list_deliveries(
    *, session: Session, clinic_id: int, subscription_id: int, page: int, page_size: int
) -> tuple[list[dict], int]:
    """A subscription's deliveries, newest first, with their attempts and last error from the ledger."""
    get_subscription(session=session, clinic_id=clinic_id, subscription_id=subscription_id)
    where = (WebhookDelivery.subscription_id == subscription_id,)
    total = session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery).where(*where))
    rows = session.execute(
        sa.select(WebhookDelivery, ScheduledJob)
        .outerjoin(ScheduledJob, ScheduledJob.id == WebhookDelivery.job_id)
        .where(*where)
        .order_by(WebhookDelivery.id.desc())
        .limit(page_size)
        .offset(page_offset(page, page_size))
    ).all()
    out = []
    for delivery, job in rows:
        status = delivery.status
        if status == PENDING and job is not None and job.status in JOB_GAVE_UP:
            status = FAILED  # the ledger gave up on the claim itself (a handler error, repeated)
        out.append(
            {
                **{c.key: getattr(delivery, c.key) for c in WebhookDelivery.__table__.columns},
                "status": status,
                "last_error": delivery.last_error or (job.last_error if job else None),
            }
        )
    return out, total


# --- events → deliveries --------------------------------------------------------------------------


_SUBSCRIPTIONS = WebhookSubscription.__table__
# Run for every event of a subscribed type, and most clinics have no subscription: built once, on
# the table (a Core statement: no entities to load, and no autoflush of the consumers' pending rows).
_ACTIVE_SUBSCRIPTIONS = sa.select(_SUBSCRIPTIONS.c.id, _SUBSCRIPTIONS.c.event_types).where(
    _SUBSCRIPTIONS.c.clinic_id == sa.bindparam("clinic_id"), _SUBSCRIPTIONS.c.active.is_(True)
)


def _active_subscriptions(session: Session, clinic_id: int) -> list:
    """The clinic's active subscriptions (id, event types), read once a unit of work: a drainer's
    batch of processings asks for each of their events."""
    held = session.cache.setdefault("webhooks.active_subscriptions", {})
    if clinic_id not in held:
        held[clinic_id] = list(session.execute(_ACTIVE_SUBSCRIPTIONS, {"clinic_id": clinic_id}))
    return held[clinic_id]


def enqueue_deliveries(*, session: Session, event, now: datetime) -> None:
    """Event consumer: one delivery (and ledger job) per active subscription to the event's type."""
    active = _active_subscriptions(session, event.clinic_id)
    for sub_id in [sub_id for sub_id, types in active if event.type in types]:
        exists = session.scalar(
            sa.select(WebhookDelivery.id).where(
                WebhookDelivery.subscription_id == sub_id, WebhookDelivery.event_id == event.id
            )
        )
        if exists is not None:
            continue
        delivery = WebhookDelivery(
            clinic_id=event.clinic_id,
            subscription_id=sub_id,
            event_id=event.id,
            event_type=event.type,
            payload={
                "type": event.type,
                "event_id": event.id,
                "clinic_id": event.clinic_id,
                "occurred_at": event.occurred_at.isoformat(),
                "data": phi_policy.strip_all(event.payload),
            },
            status=PENDING,
            created_at=now,
        )
        session.add(delivery)
        session.flush()
        job = scheduling.schedule(
            session=session,
            kind=DELIVER_KIND,
            due_at=now,
            dedupe_key=f"webhook:{sub_id}:event:{event.id}",
            now=now,
            clinic_id=event.clinic_id,
            subject_type="webhook_delivery",
            subject_id=delivery.id,
        )
        delivery.job_id = job.id


# --- delivery -------------------------------------------------------------------------------------
# Post once per attempt, outside any transaction (as notifications send):
#   1. the `webhook.deliver` job claims the delivery (pending → sending, attempts + 1); the claim
#      commits with the job's `done`, so a redelivered job finds it taken and does nothing;
#   2. after that commit the signed payload is POSTed, no transaction open;
#   3. a second short transaction records the outcome by compare-and-set on (sending, attempts):
#      delivered, or back to pending with a new job after a backoff, or failed.
# A commit failure can no longer re-send a POST the receiver took. A worker that dies between 1 and 3
# leaves the row `sending`; `recover_stuck_deliveries` re-sends it later: the receiver dedupes on the
# Idempotency-Key header (the delivery id, the same on every attempt).


@dataclass(frozen=True)
class Outgoing:
    delivery_id: int
    url: str
    body: bytes
    headers: dict


_DELIVERIES = WebhookDelivery.__table__
# The claim (app/delivery): only while the subscription is active; one built statement.
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


def deliver(*, session: Session, job, now: datetime, db) -> None:
    """The job handler: take one of the clinic's slots and claim the delivery; the POST happens
    after the claim commits, and its outcome is recorded in a unit of work of `db` (the app's
    Database) of its own. With the clinic's slots all held, the delivery waits its turn."""
    slot = slots.take(db.redis, clinic_id=job.clinic_id, settings=db.settings)
    if slot is None:
        slots.wait_for_one(session, job, kind=DELIVER_KIND, now=now, settings=db.settings)
        return
    claimed = outbound.claim(session, _CLAIM, job.subject_id, now)
    if claimed is None:
        slots.give_back(db.redis, clinic_id=job.clinic_id, token=slot)
        # Delivered, being sent, or given up: a duplicate or stale job does nothing. Still pending:
        # its subscription was deleted.
        session.connection().execute(_UNSUBSCRIBED, {"row_id": job.subject_id})
        return
    sub = session.get(WebhookSubscription, claimed.subscription_id)
    outgoing = _outgoing(claimed, sub, now)
    session.after_commit(
        partial(post_claimed, db=db, outgoing=outgoing, attempt=claimed.attempts, slot=(job.clinic_id, slot)),
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
        error, permanent = f"refused: {exc}", True
    except addresses.DeadlineExceeded as exc:
        error = f"cut at the deadline: {exc}"
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, timeout, DNS, bad answer
        error = f"could not reach the receiver: {exc}"
    except Exception as exc:  # a bug: retried like a network error, and failed if it persists
        log.exception("webhook delivery %s failed unexpectedly", outgoing.delivery_id)
        error = f"{type(exc).__name__}: {exc}"
    return outbound.settle(
        partial(
            _record,
            delivery_id=outgoing.delivery_id,
            attempt=attempt,
            response_status=response_status,
            error=error,
            permanent=permanent,
            settings=settings,
        ),
        db=db,
        clock=clock,
        what=f"webhook delivery {outgoing.delivery_id}",
    )  # unrecorded: the row stays `sending`; recover_stuck_deliveries re-sends it (the receiver dedupes)


def _record(session: Session, now: datetime, **outcome) -> str:
    return record_outcome(session=session, now=now, jitter=random.random(), **outcome)


def record_outcome(
    *,
    session: Session,
    delivery_id: int,
    attempt: int,
    response_status: int | None,
    error: str | None,
    permanent: bool,
    now: datetime,
    jitter: float,
    settings,
) -> str:
    """Write one attempt's outcome if the row is still that attempt's (`sending`, same attempts)."""
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
        session, delivery, error=error, permanent=permanent, now=now, jitter=jitter, settings=settings
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
    session: Session,
    delivery: WebhookDelivery,
    *,
    error: str,
    permanent: bool,
    now: datetime,
    jitter: float,
    settings,
) -> str:
    due = outbound.give_up_or_retry(
        delivery,
        _retry_policy(settings),
        error=error,
        permanent=permanent,
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
    session: Session, delivery: WebhookDelivery, *, due_at: datetime, now: datetime
) -> None:
    job = scheduling.schedule(
        session=session,
        kind=DELIVER_KIND,
        due_at=due_at,
        dedupe_key=f"webhook-delivery:{delivery.id}:try:{delivery.attempts + 1}",
        now=now,
        clinic_id=delivery.clinic_id,
        subject_type="webhook_delivery",
        subject_id=delivery.id,
    )
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
                error="worker stopped mid-send; sent again with the same Idempotency-Key",
                permanent=False,
                now=now,
                jitter=0.0,
                settings=settings,
            )
    if stuck:
        log.warning("re-sent %d webhook deliveries stuck in sending", len(stuck))
    return len(stuck)
