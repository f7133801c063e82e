"""An admin sends a webhook delivery again: a failed one (its attempts ran out, or the ledger gave up
on it) or a delivered one the receiver lost. The same payload and Idempotency-Key (the delivery id),
attempts reset, a fresh ledger job; audited."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.webhooks.models import DELIVERED, FAILED, PENDING, WebhookDelivery, WebhookSubscription
from app.domains.webhooks.service import DELIVER_KIND
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound
from app.platform.scheduling import service as scheduling
from app.platform.scheduling.models import GAVE_UP as JOB_GAVE_UP
from app.platform.scheduling.models import ScheduledJob

REDELIVERABLE = (FAILED, DELIVERED)


def effective_status(delivery: WebhookDelivery, job: ScheduledJob | None) -> str:
    """A pending delivery whose ledger job gave up is failed (as the deliveries list reports it)."""
    if delivery.status == PENDING and job is not None and job.status in JOB_GAVE_UP:
        return FAILED
    return delivery.status


def redeliver(
    *,
    session: UnitOfWork,
    clinic_id: int,
    subscription_id: int | None,
    delivery_id: int,
    actor: str,
    now: datetime,
) -> WebhookDelivery:
    """Send one of the clinic's deliveries again now; one still on its way is a 409, another
    clinic's (or another subscription's, when `subscription_id` is given) a 404."""
    delivery = session.scalars(
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.clinic_id == clinic_id)
        .with_for_update()  # nothing on SQLite, whose writers are serialised anyway
    ).first()
    if delivery is None or (subscription_id is not None and delivery.subscription_id != subscription_id):
        raise NotFound(f"webhook delivery {delivery_id} not found")
    job = session.get(ScheduledJob, delivery.job_id) if delivery.job_id else None
    status = effective_status(delivery, job)
    if status not in REDELIVERABLE:
        raise Conflict(
            f"webhook delivery {delivery_id} is {status}; only a failed or delivered one is sent again",
            code="invalid_state",
        )
    subscription = session.get(WebhookSubscription, delivery.subscription_id)
    if subscription is None or not subscription.active:
        raise Conflict(f"webhook delivery {delivery_id}: its subscription was deleted", code="invalid_state")
    before = {"status": status, "attempts": delivery.attempts, "last_error": delivery.last_error}
    if job is not None and job.status in JOB_GAVE_UP:
        scheduling.cancel_job(session=session, job_id=job.id, now=now)  # never run the old one as well
    delivery.status, delivery.attempts, delivery.next_attempt_at = PENDING, 0, None
    delivery.last_error = delivery.response_status = delivery.delivered_at = None
    ledger_job = scheduling.Job(
        kind=DELIVER_KIND,
        due_at=now,
        # Unique per redelivery: the delivery's earlier attempts hold the keys of their own.
        dedupe_key=f"webhook-delivery:{delivery.id}:redeliver:{now.isoformat()}",
        now=now,
        clinic_id=clinic_id,
        subject_type="webhook_delivery",
        subject_id=delivery.id,
    )
    session.schedule(ledger_job)
    new_job = scheduling.row_of(session, ledger_job)
    delivery.job_id = new_job.id
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=clinic_id,
            actor=actor,
            action="webhook_delivery.redeliver",
            subject_type="webhook_delivery",
            subject_id=delivery.id,
            at=now,
            before=before,
            after={"status": PENDING, "attempts": 0},
        ),
    )
    return delivery
