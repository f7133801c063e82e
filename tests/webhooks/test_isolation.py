"""One clinic's webhooks cannot hold the others': a delivery has one deadline for its whole exchange,
a clinic has a bounded number of subscriptions and of deliveries in flight (leases that expire)."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.webhooks import service, slots
from app.domains.webhooks.models import DELIVERED, PENDING, WebhookDelivery
from app.platform import clock
from app.platform.config import ConfigError, Settings
from app.platform.delivery import addresses
from app.platform.scheduling.models import ScheduledJob
from tests.conftest import TEST_PHI_KEY, TEST_SECRET_KEY
from tests.leadkit import create_lead
from tests.requirements import need_postgres
from tests.tasks.taskkit import run_at
from tests.webhooks.test_webhooks import Receiver, deliveries, process_events, subscribe
from tests.webhooks.trickle import TrickleServer
from tests.workers import wait_for


@pytest.fixture
def trickle():
    server = TrickleServer(interval=0.5, length=40)
    yield server
    server.close()


def timed_post(url: str, deadline: float):
    """What `addresses.post` raised (or returned) and how long it took."""
    started = time.monotonic()
    try:
        outcome = addresses.post(url, body=b"{}", headers={}, deadline=deadline, allow_private=True)
    except Exception as exc:  # the outcome under test
        outcome = exc
    return outcome, time.monotonic() - started


def test_a_trickling_receiver_is_cut_at_the_deadline_not_when_it_has_finished(trickle):
    deadline = 1.0
    outcome, took = timed_post(trickle.url, deadline)
    assert isinstance(outcome, addresses.DeadlineExceeded), outcome
    # Each byte came well within any read timeout; the whole answer would have taken 20 deadlines.
    assert trickle.trickle_seconds / deadline == 20
    assert took / deadline < 4, took
    assert took / trickle.trickle_seconds < 0.25, took
    assert trickle.connections[0]["sent"] < trickle.length  # the answer never finished


def test_a_name_the_resolver_never_answers_is_given_up_at_the_deadline(monkeypatch):
    answered = threading.Event()
    real = socket.getaddrinfo

    def hung_resolver(host, *args, **kwargs):
        if host == "hooks.example.test":
            answered.wait(30)  # a DNS server that does not answer
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hung_resolver)
    deadline = 0.5
    try:
        outcome, took = timed_post("http://hooks.example.test/hook", deadline)
    finally:
        answered.set()
    assert isinstance(outcome, addresses.DeadlineExceeded), outcome
    assert took / 30 < 0.1 and took / deadline < 4, took


def test_a_delivery_cut_at_its_deadline_is_a_failed_attempt_retried_later(
    app, client, db, tenant, trickle, monkeypatch
):
    monkeypatch.setattr(app.config["SETTINGS"], "webhook_deadline_seconds", 1.0)
    subscribe(client, tenant, trickle.url, ["lead.created"])
    create_lead(client, tenant)
    process_events(app, db)
    [job] = deliveries(db)
    started = time.monotonic()
    assert run_at(app, job, clock.now()) == "done"
    assert (time.monotonic() - started) / trickle.trickle_seconds < 0.25
    with db.unit_of_work() as session:
        row = session.scalars(sa.select(WebhookDelivery)).one()
        retry = session.get(ScheduledJob, row.job_id)
    assert row.status == PENDING and row.attempts == 1 and addresses.UNREACHABLE in row.last_error
    assert retry.id != job.id and retry.status in ("pending", "dispatched") and retry.due_at > job.due_at


def test_a_clinic_has_at_most_its_cap_of_subscriptions(app, client, tenant, make_tenant, monkeypatch):
    monkeypatch.setattr(app.config["SETTINGS"], "webhook_max_subscriptions_per_clinic", 2)
    url = "http://127.0.0.1:9/hook"
    made = [subscribe(client, tenant, url, ["lead.created"]) for _ in range(2)]
    refused = client.post(
        "/api/webhooks", json={"url": url, "event_types": ["lead.created"]}, headers=tenant.headers()
    )
    assert refused.status_code == 409
    assert "at most 2 webhook subscriptions" in refused.get_json()["message"]
    # Another clinic has its own count; a deleted subscription frees its place.
    subscribe(client, make_tenant("Other Clinic"), url, ["lead.created"])
    assert client.delete(f"/api/webhooks/{made[0]['id']}", headers=tenant.headers()).status_code == 204
    subscribe(client, tenant, url, ["lead.created"])


def test_two_creates_at_once_do_not_pass_the_cap_together(app, tenant, migrated_database, monkeypatch):
    need_postgres(migrated_database, "SQLite serialises every writer: no two creates ever overlap")
    monkeypatch.setattr(app.config["SETTINGS"], "webhook_max_subscriptions_per_clinic", 1)
    counted = service._subscription_count

    def count_then_linger(session, clinic_id):
        found = counted(session, clinic_id)
        time.sleep(0.5)  # the other create counts meanwhile, unless it waits for this one
        return found

    monkeypatch.setattr(service, "_subscription_count", count_then_linger)
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["lead.created"]}
    statuses = []

    def create():
        resp = app.test_client().post("/api/webhooks", json=body, headers=tenant.headers())
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201, 409]


def delivery_and_job(db):
    with db.unit_of_work() as session:
        row = session.scalars(sa.select(WebhookDelivery)).one()
        return row, session.get(ScheduledJob, row.job_id)


def test_a_delivery_past_the_clinics_cap_waits_for_a_slot_without_spending_an_attempt(
    app, client, db, tenant, monkeypatch
):
    settings = app.config["SETTINGS"]
    monkeypatch.setattr(settings, "webhook_max_concurrent_per_clinic", 1)
    monkeypatch.setattr(settings, "webhook_deadline_seconds", 0.5)  # leases of a couple of seconds
    redis = app.extensions["followup.redis"]
    receiver = Receiver(failures=0)
    try:
        subscribe(client, tenant, receiver.url, ["lead.created"])
        create_lead(client, tenant)
        process_events(app, db)
        [job] = deliveries(db)
        # Another delivery of the clinic holds its one slot: a worker that then died mid-send.
        held = slots.take(redis, clinic_id=tenant.id, settings=settings)
        assert held and slots.take(redis, clinic_id=tenant.id, settings=settings) is None
        assert run_at(app, job, clock.now()) == "done"
        row, waiting = delivery_and_job(db)
        assert receiver.hits == 0 and row.status == PENDING and row.attempts == 0
        assert (
            waiting.id != job.id
            and waiting.status in ("pending", "dispatched")
            and row.next_attempt_at == waiting.due_at
        )
        # The dead worker's lease ends on its own; the delivery then goes out.
        wait_for(lambda: redis.zscore(slots.key(tenant.id), held) is None or _expired(redis, tenant.id))
        assert run_at(app, waiting, waiting.due_at + timedelta(seconds=1)) == "done"
        row, _ = delivery_and_job(db)
        assert row.status == DELIVERED and row.attempts == 1 and receiver.hits == 1
        # ... and its slot is given back once its outcome is recorded.
        assert slots.take(redis, clinic_id=tenant.id, settings=settings) is not None
    finally:
        receiver.close()


def _expired(redis, clinic_id: int) -> bool:
    now_ms = int(redis.time()[0]) * 1000
    return not redis.zcount(slots.key(clinic_id), now_ms, "+inf")


def test_settings_refuse_a_stuck_time_a_live_delivery_could_reach():
    secrets = {"secret_key": TEST_SECRET_KEY, "phi_encryption_key": TEST_PHI_KEY}
    Settings(**secrets).validate()
    with pytest.raises(ConfigError, match="webhook_stuck_seconds"):
        Settings(webhook_deadline_seconds=200.0, **secrets).validate()
    with pytest.raises(ConfigError, match="webhook_max_concurrent_per_clinic"):
        Settings(webhook_max_concurrent_per_clinic=0, **secrets).validate()
