"""Delivery through a real worker to real (fake-provider) servers: retries, dead letters, send once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.platform import clock
from app.platform.audit.models import AuditEvent
from app.platform.config import Settings
from app.platform.scheduling import sweeps
from app.platform.scheduling.models import ScheduledJob
from tests.ledger import queued, queued_job_ids
from tests.outbound.fakes import free_port, sms_provider, smtp_server
from tests.outbound.kit import (
    FAST_DELIVERY,
    all_in,
    queue_emails,
    queue_sms,
    rows,
    sms_settings,
    smtp_settings,
    use,
)
from tests.reliability.conftest import sweeping
from tests.workers import thread_worker, wait_for


@pytest.fixture
def fast_delivery(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, **FAST_DELIVERY)
    return settings


def test_smtp_down_for_a_while_then_up_delivers_each_email_exactly_once(
    app, db, tenant, fast_delivery, monkeypatch
):
    port = free_port()
    use(monkeypatch, fast_delivery, notification_max_attempts=12, **smtp_settings(port))
    ids = queue_emails(app, tenant, 5)
    with thread_worker(app), sweeping(app):
        # Nothing listens: connection refused, retried with backoff.
        wait_for(lambda: all(r.attempts >= 2 for r in rows(db, ids)), timeout=30)
        assert {r.status for r in rows(db, ids)} <= {"pending", "sending"}
        with smtp_server(port) as (server, _):
            server.transient_first = 1  # and once up, every message is deferred (451) once more
            wait_for(lambda: all_in(db, ids, {"sent"}), timeout=60)
            time.sleep(1)  # any stray second send would land now
    assert len(server.accepted) == 5 and set(server.accepted.values()) == {1}
    sent = rows(db, ids)
    assert all(r.provider_message_id and r.sent_at and r.last_error is None for r in sent)
    message = server.messages[0]
    assert message.is_multipart() and {p.get_content_type() for p in message.get_payload()} == {
        "text/plain",
        "text/html",
    }
    assert message["From"] == fast_delivery.email_from


def test_sms_provider_503_then_up_delivers_each_once(app, db, tenant, fast_delivery, monkeypatch):
    with sms_provider() as (provider, url):
        use(monkeypatch, fast_delivery, **sms_settings(url))
        provider.unavailable_for = 6
        ids = queue_sms(app, tenant, 3)
        with thread_worker(app), sweeping(app):
            wait_for(lambda: all_in(db, ids, {"sent"}), timeout=60)
    assert provider.deliveries() == 3
    assert sum(r.attempts for r in rows(db, ids)) == 3 + 6


def test_transient_errors_until_attempts_run_out_make_it_dead(app, db, tenant, fast_delivery, monkeypatch):
    use(monkeypatch, fast_delivery, notification_max_attempts=3, **smtp_settings(free_port()))
    ids = queue_emails(app, tenant, 1)
    with thread_worker(app), sweeping(app):
        wait_for(lambda: all_in(db, ids, {"dead"}), timeout=30)
    (row,) = rows(db, ids)
    assert row.attempts == 3 and "connection" in row.last_error.lower()


def test_a_permanent_error_fails_at_once_without_retries(app, db, tenant, fast_delivery, monkeypatch):
    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, **smtp_settings(port))
        server.refuse = {"nobody@example.com"}
        ids = queue_emails(app, tenant, 2, to=lambda i: ["nobody@example.com", "not-an-address"][i])
        with thread_worker(app), sweeping(app):
            wait_for(lambda: all_in(db, ids, {"failed"}), timeout=30)
            time.sleep(1)
    refused, invalid = rows(db, ids)
    assert refused.attempts == 1 and "550" in refused.last_error
    assert invalid.attempts == 1 and "invalid email address" in invalid.last_error
    assert server.rcpt_count == 1 and not server.accepted  # the invalid one never reached the server


def test_bulk_retry_after_fixing_the_configuration_delivers_each_once(
    app, db, client, tenant, fast_delivery, monkeypatch
):
    with sms_provider() as (provider, url):
        use(monkeypatch, fast_delivery, **sms_settings(url, token="wrong-token"))
        ids = queue_sms(app, tenant, 4)
        with thread_worker(app), sweeping(app):
            wait_for(lambda: all_in(db, ids, {"failed"}), timeout=30)
            assert all("401" in r.last_error and r.attempts == 1 for r in rows(db, ids))
            monkeypatch.setattr(fast_delivery, "sms_token", "secret-token")
            resp = client.post(
                "/api/notifications/retry",
                json={"status": "failed", "channel": "sms"},
                headers=tenant.headers(),
            )
            assert resp.status_code == 200 and resp.json == {"requeued": 4}
            wait_for(lambda: all_in(db, ids, {"sent"}), timeout=30)
            again = client.post("/api/notifications/retry", json={}, headers=tenant.headers())
            assert again.json == {"requeued": 0}
            time.sleep(1)
    assert provider.deliveries() == 4
    with db.unit_of_work() as session:
        audited = session.query(AuditEvent).filter_by(action="notification.retry").count()
    assert audited == 4


def test_a_duplicate_job_for_a_sent_message_sends_nothing(app, db, tenant, fast_delivery, monkeypatch):
    from app.domains.outbound import outgoing

    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, **smtp_settings(port))
        ids = queue_emails(app, tenant, 1)
        with thread_worker(app), sweeping(app):
            wait_for(lambda: all_in(db, ids, {"sent"}), timeout=30)
            with app.app_context(), db.unit_of_work() as session:
                (row,) = rows(db, ids)
                outgoing.schedule_delivery(session, session.merge(row), clock.now(), clock.now())
            time.sleep(2)
    assert server.accepted == {"m:0": 1}
    assert rows(db, ids)[0].attempts == 1


def test_a_failed_sends_retry_waits_in_the_ledger_not_in_the_senders_memory(
    app, db, tenant, fast_delivery, monkeypatch, redis
):
    """With the relay down every email is tried again later (30 s, then longer). That retry waits
    in the ledger until due, not as an eta message the sender would hold in memory for up to 10
    minutes (thousands of them while a relay stays down); the promote sweep publishes it once due."""
    use(
        monkeypatch, fast_delivery, **smtp_settings(free_port()),  # nothing listens there
        notification_retry_base_seconds=Settings.notification_retry_base_seconds,  # the defaults
        notification_retry_max_seconds=Settings.notification_retry_max_seconds,
        schedule_horizon_seconds=Settings.schedule_horizon_seconds,
    )  # fmt: skip
    ids = queue_emails(app, tenant, 1)
    with thread_worker(app):
        wait_for(lambda: rows(db, ids)[0].last_error is not None, timeout=30)
    [email] = rows(db, ids)
    assert email.status == "pending" and email.attempts == 1 and email.next_attempt_at > clock.now()
    retry = _job_of(db, email.id, due_at=email.next_attempt_at)
    assert retry.status == "pending" and retry.id not in queued_job_ids(redis, "notifications")

    assert sweeps.promote_due(db=db, now=clock.now()) == 0
    assert sweeps.promote_due(db=db, now=retry.due_at + timedelta(seconds=1)) == 1
    [message] = [m for m in queued(redis, "notifications") if m["job_id"] == retry.id]
    assert message["eta"] is None  # published once due, to run at once


def _job_of(db, notification_id: int, *, due_at) -> ScheduledJob:
    with db.unit_of_work() as session:
        return session.scalars(
            sa.select(ScheduledJob).where(
                ScheduledJob.subject_type == "notification",
                ScheduledJob.subject_id == notification_id,
                ScheduledJob.due_at == due_at,
            )
        ).one()
