"""Outbound webhooks: subscriptions, one delivery per (subscription, event), signed, retried by the ledger.

An event consumer writes a delivery row and its `webhook.deliver` ledger job in the event's
processing transaction. The job claims the delivery; the signed payload is POSTed after that claim
commits and the outcome is recorded in a transaction of its own (see "delivery" below); a non-2xx
answer, a network error or an exchange cut at settings.webhook_deadline_seconds schedules the next
attempt with exponential backoff, up to settings.webhook_max_attempts. A clinic has at most
settings.webhook_max_concurrent_per_clinic deliveries being sent at once (slots.py): the others
wait their turn. Receivers deduplicate on the Idempotency-Key header (also X-Followup-Delivery): a
timeout after the receiver got the request, or a worker dying mid-send, makes a second attempt.

Signature: `X-Followup-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.

Payloads carry ids and states, never PHI (app/platform/phi_policy.py): a subscriber fetches a lead's
details with an API key, whose `lead:phi` the clinic's admin grants and whose reads are audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.webhooks.models import FAILED, PENDING, WebhookDelivery, WebhookSubscription
from app.platform import phi_policy
from app.platform.audit import service as audit
from app.platform.db import PageRequest, UnitOfWork, page_offset
from app.platform.delivery import addresses
from app.platform.errors import Conflict, NotFound, ValidationFailed
from app.platform.events.types import Delivered
from app.platform.roles import Actor
from app.platform.scheduling import service as scheduling
from app.platform.scheduling.memo import Memo
from app.platform.scheduling.models import GAVE_UP as JOB_GAVE_UP
from app.platform.scheduling.models import ScheduledJob

DELIVER_KIND = "webhook.deliver"
SIGNATURE_HEADER = "X-Followup-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# --- subscriptions --------------------------------------------------------------------------------


def create_subscription(*, session: UnitOfWork, actor: Actor, data: dict, now: datetime, settings) -> dict:
    """A subscription with a fresh secret, returned only in this answer; a clinic has at most
    settings.webhook_max_subscriptions_per_clinic (each may hold the clinic's delivery slots)."""
    try:
        addresses.check_url(
            data["url"],
            allow_private=settings.webhook_allow_private_addresses,
            timeout=settings.webhook_deadline_seconds,
        )
    except addresses.AddressRefused:  # not which address: that would tell internal names' addresses
        raise ValidationFailed("url", "webhooks may not post to private or reserved addresses") from None
    limit = settings.webhook_max_subscriptions_per_clinic
    # The clinic's row, locked (not its key: leads and the rest still reference it) until the commit,
    # after the URL's lookup: two creates at once count in turn, so neither makes one past the limit.
    session.execute(sa.select(Clinic.id).where(Clinic.id == actor.clinic_id).with_for_update(key_share=True))
    if _subscription_count(session, actor.clinic_id) >= limit:
        raise Conflict(
            f"a clinic may have at most {limit} webhook subscriptions; delete one to add another",
            code="limit_reached",
        )
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
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="webhook.create",
            subject_type="webhook",
            subject_id=sub.id,
            after={"url": sub.url, "event_types": sub.event_types},
            at=now,
        ),
    )
    shown = ("id", "url", "event_types", "description", "active", "created_at")
    return {**{c: getattr(sub, c) for c in shown}, "secret": secret}


def _subscription_count(session: UnitOfWork, clinic_id: int) -> int:
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(WebhookSubscription)
        .where(WebhookSubscription.clinic_id == clinic_id, WebhookSubscription.deleted_at.is_(None))
    )


def list_subscriptions(*, session: UnitOfWork, clinic_id: int) -> list[WebhookSubscription]:
    return list(
        session.scalars(
            sa.select(WebhookSubscription)
            .where(WebhookSubscription.clinic_id == clinic_id, WebhookSubscription.deleted_at.is_(None))
            .order_by(WebhookSubscription.id)
        )
    )


def get_subscription(*, session: UnitOfWork, clinic_id: int, subscription_id: int) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None or sub.clinic_id != clinic_id or sub.deleted_at is not None:
        raise NotFound(f"webhook {subscription_id} not found")
    return sub


def delete_subscription(*, session: UnitOfWork, actor: Actor, subscription_id: int, now: datetime) -> None:
    """Stop a subscription; its pending deliveries are dropped (their jobs find it inactive)."""
    sub = get_subscription(session=session, clinic_id=actor.clinic_id, subscription_id=subscription_id)
    sub.active, sub.deleted_at = False, now
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="webhook.delete",
            subject_type="webhook",
            subject_id=sub.id,
            at=now,
        ),
    )


def list_deliveries(
    *, session: UnitOfWork, clinic_id: int, subscription_id: int, paging: PageRequest
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
        .limit(paging.page_size)
        .offset(page_offset(paging.page, paging.page_size))
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


class ActiveSubscriptions(dict):
    """A transaction's memo (scheduling.Memo) of its clinics' active subscriptions (id, event
    types), by clinic: read once, not for each event of a drainer's batch of processings."""

    def of(self, session: UnitOfWork, clinic_id: int) -> list:
        if clinic_id not in self:
            self[clinic_id] = list(session.execute(_ACTIVE_SUBSCRIPTIONS, {"clinic_id": clinic_id}))
        return self[clinic_id]


def enqueue_deliveries(*, session: UnitOfWork, event: Delivered, now: datetime, memo: Memo) -> None:
    """Event consumer: one delivery (and ledger job) per active subscription to the event's type; its
    `data`, the event's fields as the outbox stores them (`Delivered.payload()`), less any PHI.
    `memo`: the transaction's, which keeps the clinic's subscriptions for its other events."""
    active = memo.part(ActiveSubscriptions).of(session, event.clinic_id)
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
                "data": phi_policy.strip_all(event.payload()),
            },
            status=PENDING,
            created_at=now,
        )
        session.add(delivery)
        session.flush()
        ledger_job = scheduling.Job(
            kind=DELIVER_KIND,
            due_at=now,
            dedupe_key=f"webhook:{sub_id}:event:{event.id}",
            now=now,
            clinic_id=event.clinic_id,
            subject_type="webhook_delivery",
            subject_id=delivery.id,
        )
        session.schedule(ledger_job)
        job = scheduling.row_of(session, ledger_job)
        delivery.job_id = job.id
