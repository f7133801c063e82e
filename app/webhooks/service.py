"""Outbound webhooks: subscriptions, one delivery per (subscription, event), signed, retried by the ledger.

An event consumer writes a delivery row and its `webhook.deliver` ledger job in the event's processing
transaction. The job POSTs the signed payload; a non-2xx answer or a network error raises, so the
ledger retries with exponential backoff up to its max attempts (the job row keeps attempts and the
last error, which the delivery history shows). Receivers deduplicate on X-Followup-Delivery: a
timeout after the receiver got the request can make a second attempt.

Signature: `X-Followup-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import urllib.error
import urllib.request
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.permissions import Actor
from app.errors import NotFound
from app.scheduling import service as scheduling
from app.scheduling.models import DONE as JOB_DONE
from app.scheduling.models import FAILED as JOB_FAILED
from app.scheduling.models import ScheduledJob
from app.webhooks.models import DELIVERED, FAILED, PENDING, WebhookDelivery, WebhookSubscription

DELIVER_KIND = "webhook.deliver"
SIGNATURE_HEADER = "X-Followup-Signature"


class DeliveryFailed(Exception):
    """The receiver did not take the delivery (non-2xx, timeout, refused): the ledger retries."""


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# --- subscriptions --------------------------------------------------------------------------------


def create_subscription(*, session: Session, actor: Actor, data: dict, now: datetime) -> dict:
    """A subscription with a fresh secret, returned only in this answer."""
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
        .offset((page - 1) * page_size)
    ).all()
    out = []
    for delivery, job in rows:
        status = delivery.status
        if status == PENDING and job is not None and job.status == JOB_FAILED:
            status = FAILED
        out.append(
            {
                **{c.key: getattr(delivery, c.key) for c in WebhookDelivery.__table__.columns},
                "status": status,
                "attempts": job.attempts if job else 0,
                "last_error": job.last_error if job else None,
                "next_attempt_at": job.due_at if job and job.status not in (JOB_DONE, JOB_FAILED) else None,
            }
        )
    return out, total


# --- events → deliveries --------------------------------------------------------------------------


def enqueue_deliveries(*, session: Session, event, now: datetime) -> None:
    """Event consumer: one delivery (and ledger job) per active subscription to the event's type."""
    subs = [
        s
        for s in session.scalars(
            sa.select(WebhookSubscription).where(
                WebhookSubscription.clinic_id == event.clinic_id, WebhookSubscription.active.is_(True)
            )
        )
        if event.type in s.event_types
    ]
    for sub in subs:
        exists = session.scalar(
            sa.select(WebhookDelivery.id).where(
                WebhookDelivery.subscription_id == sub.id, WebhookDelivery.event_id == event.id
            )
        )
        if exists is not None:
            continue
        delivery = WebhookDelivery(
            clinic_id=event.clinic_id,
            subscription_id=sub.id,
            event_id=event.id,
            event_type=event.type,
            payload={
                "type": event.type,
                "event_id": event.id,
                "clinic_id": event.clinic_id,
                "occurred_at": event.occurred_at.isoformat(),
                "data": event.payload,
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
            dedupe_key=f"webhook:{sub.id}:event:{event.id}",
            now=now,
            clinic_id=event.clinic_id,
            subject_type="webhook_delivery",
            subject_id=delivery.id,
        )
        delivery.job_id = job.id


def deliver(*, session: Session, job, now: datetime) -> None:
    """The job handler: POST the signed payload; anything but a 2xx raises (the ledger retries)."""
    delivery = session.get(WebhookDelivery, job.subject_id)
    if delivery is None or delivery.status != PENDING:
        return
    sub = session.get(WebhookSubscription, delivery.subscription_id)
    if sub is None or not sub.active:
        delivery.status = FAILED
        return
    body = json.dumps({"id": delivery.id, **delivery.payload}, separators=(",", ":")).encode()
    request = urllib.request.Request(
        sub.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "followup-engine-webhooks/1",
            "X-Followup-Event": delivery.event_type,
            "X-Followup-Delivery": str(delivery.id),
            SIGNATURE_HEADER: sign(secret=sub.secret, timestamp=int(now.timestamp()), body=body),
        },
    )
    timeout = current_app.config["SETTINGS"].webhook_timeout_seconds
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        raise DeliveryFailed(f"receiver answered {error.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise DeliveryFailed(f"could not reach the receiver: {error}") from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"receiver answered {status}")
    delivery.status, delivery.response_status, delivery.delivered_at = DELIVERED, status, now
