"""One clinic's slow webhook receiver, against the Procfile's real worker split (one worker on
`notifications`, one on `webhooks`): another clinic's emails and webhook go out while the slow
receiver's deliveries are cut at their deadline, one at a time, and end failed."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from app.domains.webhooks.models import FAILED, WebhookDelivery
from tests.leadkit import create_lead
from tests.outbound.fakes import smtp_server
from tests.outbound.kit import FAST_DELIVERY, as_env, queue_emails, smtp_settings
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.webhooks.test_webhooks import Receiver, process_events, subscribe
from tests.webhooks.trickle import TrickleServer
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

pytestmark = pytest.mark.reliability

DEADLINE = 5.0
WEBHOOKS = {
    "webhook_deadline_seconds": DEADLINE,
    "webhook_max_attempts": 1,  # one cut attempt each: failed (retries: tests/webhooks)
    "webhook_max_concurrent_per_clinic": 1,
    "webhook_busy_retry_seconds": 0.3,
    "webhook_allow_private_addresses": 1,
}


def deliveries_of(db, clinic_id: int) -> list[WebhookDelivery]:
    with db.unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(WebhookDelivery)
                .where(WebhookDelivery.clinic_id == clinic_id)
                .order_by(WebhookDelivery.id)
            )
        )


def test_a_slow_receiver_holds_neither_another_clinics_emails_nor_its_webhooks(
    app, client, db, make_tenant, fast
):
    slow_clinic, other_clinic = make_tenant("Slow Hooks Dental"), make_tenant("Prompt Smiles")
    trickle = TrickleServer(interval=0.5, length=200)  # the whole answer would take 20 deadlines
    receiver = Receiver(failures=0)
    try:
        with smtp_server() as (smtp, port):
            # Two subscriptions of the slow clinic to its receiver: two deliveries of each event,
            # as many as the webhook worker has processes.
            for _ in range(2):
                subscribe(client, slow_clinic, trickle.url, ["lead.created"])
            subscribe(client, other_clinic, receiver.url, ["lead.created"])
            env = WORKER_ENV | as_env(FAST_DELIVERY | smtp_settings(port) | WEBHOOKS)
            with (
                subprocess_worker(fast, name="background", queues="notifications", concurrency=1, **env),
                subprocess_worker(fast, name="webhooks", queues="webhooks", concurrency=2, **env),
                sweeping(app),
            ):
                wait_until_consuming(app, "background")
                wait_until_consuming(app, "webhooks")
                create_lead(client, slow_clinic)
                process_events(app, db)
                wait_for(lambda: trickle.connections, timeout=60)  # the slow clinic's first attempt

                create_lead(client, other_clinic)
                process_events(app, db)
                emails = queue_emails(app, other_clinic, 3, prefix="prompt")
                seen: dict[str, float] = {}

                def look():
                    now = time.monotonic()
                    if sum(1 for key in smtp.accepted if key and key.startswith("prompt:")) == len(emails):
                        seen.setdefault("emails", now)
                    if receiver.accepted:
                        seen.setdefault("webhook", now)
                    slow = deliveries_of(db, slow_clinic.id)
                    if any(d.status == FAILED for d in slow):
                        seen.setdefault("first_cut", now)
                    if len(slow) == 2 and all(d.status == FAILED for d in slow):
                        seen.setdefault("all_cut", now)
                    return len(seen) == 4

                wait_for(look, timeout=120, interval=0.05)
        slow = deliveries_of(db, slow_clinic.id)
        connections = list(trickle.connections)
    finally:
        trickle.close()
        receiver.close()

    # The other clinic's messages and webhook went out while the slow receiver's first attempt
    # still held a webhook worker (its outcome was not recorded yet).
    assert seen["emails"] < seen["first_cut"] and seen["webhook"] < seen["first_cut"], seen
    assert len(receiver.accepted) == 1
    # Each slow delivery was cut at its deadline, long before the receiver would have finished.
    assert [(d.status, d.attempts) for d in slow] == [(FAILED, 1), (FAILED, 1)]
    # Cut at the deadline, said in the one neutral text every unreachable receiver gets (it tells
    # nothing of the network: app/platform/delivery/addresses.py).
    assert all("could not be reached" in d.last_error for d in slow), [d.last_error for d in slow]
    assert len(connections) == 2 and all(c["sent"] < trickle.length for c in connections)
    assert (seen["all_cut"] - connections[0]["accepted"]) / trickle.trickle_seconds < 0.75
    # One at a time (the clinic's cap), so the other clinic's webhook always had a worker free.
    assert trickle.most_open == 1
