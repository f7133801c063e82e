"""Outbound webhooks: subscriptions, signed deliveries retried by the ledger, delivery history."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from app.domains.tasks.alerts import overdue as task_overdue
from app.domains.webhooks.models import WebhookDelivery
from app.domains.webhooks.service import DELIVER_KIND
from app.platform import clock
from app.platform.events.consumers import PROCESS_KINDS
from app.platform.events.models import DomainEvent
from app.platform.scheduling.models import ScheduledJob
from tests.leadkit import create_lead
from tests.tasks.taskkit import run_at


class Receiver:
    """A real HTTP server that answers 500 to the first `failures` requests, then 200."""

    def __init__(self, failures: int):
        self.failures, self.hits, self.accepted = failures, 0, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.hits += 1
                if receiver.hits <= receiver.failures:
                    self.send_response(500)
                else:
                    receiver.accepted.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(failures=2)
    yield r
    r.close()


def process_events(app, db, at=None):
    """Run the pending event-processing jobs as a worker would (at `at`, default now)."""
    with db.unit_of_work() as session:
        jobs = list(
            session.scalars(
                sa.select(ScheduledJob).where(
                    ScheduledJob.kind.in_(PROCESS_KINDS), ScheduledJob.status.in_(("pending", "dispatched"))
                )
            )
        )
    for job in jobs:
        run_at(app, job, at or clock.now())


def deliveries(db):
    with db.unit_of_work() as session:
        return list(session.scalars(sa.select(ScheduledJob).where(ScheduledJob.kind == DELIVER_KIND)))


def run_attempts(app, db, job, limit=6):
    """Run a delivery's attempt jobs in turn, each at its due time, until none is left open."""
    outcomes, now = [], clock.now()
    for _ in range(limit):
        with db.unit_of_work() as session:
            delivery = session.get(WebhookDelivery, job.subject_id)
            job = session.get(ScheduledJob, delivery.job_id)
        if job.status not in ("pending", "dispatched"):
            return outcomes
        now = max(now, job.due_at) + timedelta(seconds=1)
        outcomes.append(run_at(app, job, now))
    return outcomes


def subscribe(client, tenant, url, events):
    resp = client.post("/api/webhooks", json={"url": url, "event_types": events}, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_a_receiver_failing_twice_gets_the_event_once_signed(app, client, db, tenant, receiver):
    sub = subscribe(client, tenant, receiver.url, ["lead.created"])
    assert sub["secret"].startswith("whsec_")
    listed = client.get("/api/webhooks", headers=tenant.headers()).get_json()
    assert [w["id"] for w in listed] == [sub["id"]] and "secret" not in listed[0]
    lead = create_lead(client, tenant)
    process_events(app, db)
    [job] = deliveries(db)
    assert job.queue == "webhooks"  # a queue of its own: no email or SMS waits behind a receiver
    outcomes = run_attempts(app, db, job)
    # Each attempt is its own job: claimed (done), POSTed after the claim commits, and a failure
    # schedules the next attempt; the first job run again finds the delivery taken.
    assert outcomes == ["done", "done", "done"]
    assert run_at(app, job, clock.now() + timedelta(hours=2)) == "skipped"
    assert receiver.hits == 3 and len(receiver.accepted) == 1
    headers, body = receiver.accepted[0]
    payload = json.loads(body)
    assert payload["type"] == "lead.created" and payload["data"]["lead_id"] == lead["id"]
    timestamp, signature = (part.split("=", 1)[1] for part in headers["X-Followup-Signature"].split(","))
    expected = hmac.new(sub["secret"].encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert headers["X-Followup-Event"] == "lead.created"
    assert headers["Idempotency-Key"] == f"delivery-{payload['id']}"  # the same on every attempt

    history = client.get(f"/api/webhooks/{sub['id']}/deliveries", headers=tenant.headers()).get_json()
    assert len(history) == 1
    assert (history[0]["status"], history[0]["attempts"], history[0]["response_status"]) == (
        "delivered",
        3,
        204,
    )
    assert "500" in history[0]["last_error"]


def test_converted_lost_and_overdue_events_are_forwarded_only_when_subscribed(
    app, client, db, tenant, receiver
):
    receiver.failures = 0
    subscribe(client, tenant, receiver.url, ["lead.lost", "task.overdue"])
    lead = create_lead(client, tenant)
    task = client.post(
        f"/api/leads/{lead['id']}/tasks", json={"title": "Call", "type": "CALL", "due_in_minutes": 1},
        headers=tenant.headers("treatment_coordinator"),
    ).get_json()  # fmt: skip
    with app.app_context(), db.unit_of_work() as session:
        assert task_overdue.mark_overdue(session=session, now=clock.now() + timedelta(minutes=5)) == 1
    with app.app_context(), db.unit_of_work() as session:
        assert task_overdue.mark_overdue(session=session, now=clock.now() + timedelta(minutes=6)) == 0  # once
    client.post(f"/api/leads/{lead['id']}/lost", json={"reason": "OTHER"}, headers=tenant.headers())
    process_events(app, db, at=clock.now() + timedelta(minutes=10))
    for job in deliveries(db):
        assert run_at(app, job, clock.now() + timedelta(minutes=10)) == "done"
    types = sorted(json.loads(body)["type"] for _, body in receiver.accepted)
    assert types == ["lead.lost", "task.overdue"]
    overdue = next(json.loads(b) for _, b in receiver.accepted if json.loads(b)["type"] == "task.overdue")
    assert overdue["data"]["task_id"] == task["id"]
    with db.unit_of_work() as session:
        assert (
            session.scalar(
                sa.select(sa.func.count()).select_from(DomainEvent).where(DomainEvent.type == "task.overdue")
            )
            == 1
        )


def test_deleted_subscriptions_stop_and_other_clinics_get_404(app, client, db, tenant, make_tenant, receiver):
    sub = subscribe(client, tenant, receiver.url, ["lead.created"])
    other = make_tenant("Other")
    assert client.delete(f"/api/webhooks/{sub['id']}", headers=other.headers()).status_code == 404
    assert client.get(f"/api/webhooks/{sub['id']}/deliveries", headers=other.headers()).status_code == 404
    assert client.delete(f"/api/webhooks/{sub['id']}", headers=tenant.headers()).status_code == 204
    create_lead(client, tenant)
    process_events(app, db)
    assert deliveries(db) == []
    assert client.get("/api/webhooks", headers=tenant.headers()).get_json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x", "event_types": ["lead.created"]}, "url"),
        ({"url": "https://example.com/h", "event_types": ["lead.exploded"]}, "event_types"),
        ({"url": "https://example.com/h", "event_types": []}, "event_types"),
        ({"event_types": ["lead.created"]}, "url"),
    ],
)
def test_bad_subscriptions_are_422_naming_the_field(client, tenant, body, field):
    resp = client.post("/api/webhooks", json=body, headers=tenant.headers())
    assert resp.status_code == 422 and field in resp.get_json()["errors"]["json"]
