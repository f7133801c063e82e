"""A clinic's provider rate limit per channel, through a real worker to the local SMS server: the
201st SMS of an hour is not dropped and not sent early: it waits in the ledger for the next window."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.outbound import outgoing
from app.domains.outbound.models import ProviderSendWindow
from app.platform import clock
from app.platform.scheduling.models import ScheduledJob
from tests.automation.outreachkit import run
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import FAST_DELIVERY, queue_sms, rows, sms_settings, use
from tests.reliability.conftest import sweeping
from tests.workers import thread_worker, wait_for


@pytest.fixture
def fast_delivery(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, **FAST_DELIVERY)
    return settings


def set_limits(client, tenant, **limits) -> None:
    resp = client.put(
        "/api/clinic", json={"settings": {"provider_rate_limits": limits}}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()


def open_delivery_job(db, notification_id: int) -> ScheduledJob:
    with db.unit_of_work() as session:
        return session.scalar(
            sa.select(ScheduledJob).where(
                ScheduledJob.subject_type == "notification",
                ScheduledJob.subject_id == notification_id,
                ScheduledJob.status.in_(("pending", "dispatched")),
            )
        )


def window(db, tenant, channel: str = "sms") -> ProviderSendWindow:
    with db.unit_of_work() as session:
        return session.get(ProviderSendWindow, (tenant.id, channel))


def test_the_201st_sms_of_the_hour_waits_for_the_next_window(
    app, client, db, tenant, fast_delivery, monkeypatch
):
    set_limits(client, tenant, sms="200/hour")
    with sms_provider() as (provider, url):
        use(monkeypatch, fast_delivery, **sms_settings(url))
        ids = queue_sms(app, tenant, 201, prefix="limited")
        with thread_worker(app), sweeping(app):
            wait_for(lambda: sum(r.status == "sent" for r in rows(db, ids)) == 200, timeout=120)
            wait_for(lambda: [r for r in rows(db, ids) if r.status == "pending" and r.last_error], timeout=30)
            time.sleep(0.5)  # a send over the limit would land now
        assert provider.deliveries() == 200
        [held] = [r for r in rows(db, ids) if r.status != "sent"]
        current = window(db, tenant)
        assert current.sent == 200
        next_window = current.window_start + timedelta(hours=1)
        assert held.next_attempt_at == next_window
        assert held.attempts == 0 and "sms rate limit (200 per 1 hour)" in held.last_error
        assert (held.held_by, held.held_until) == ("pacing", next_window)  # its answers say so (issue 74)
        job = open_delivery_job(db, held.id)
        assert job.due_at == next_window  # durable: the ledger holds it, no worker sleeps on it

        # The hour passes (the job runs with the `now` of its due time): sent, in a new window.
        assert run(app, job, job.due_at) == "done"
        wait_for(lambda: rows(db, [held.id])[0].status == "sent", timeout=30)
        assert provider.deliveries() == 201
    assert (window(db, tenant).window_start, window(db, tenant).sent) == (next_window, 1)


def test_a_batch_over_the_limit_sends_what_fits_and_defers_the_rest(
    app, client, db, tenant, fast_delivery, monkeypatch
):
    set_limits(client, tenant, sms="3 per 10 minutes", email=None)  # null: no limit on email
    monkeypatch.setattr(outgoing, "BATCH_SIZE", 10)
    with sms_provider() as (provider, url):
        use(monkeypatch, fast_delivery, **sms_settings(url))
        with app.app_context(), db.unit_of_work() as session:
            messages = [
                {
                    "clinic_id": tenant.id,
                    "to_address": f"+1555987{i:04d}",
                    "template": "lead_message",
                    "context": {"body": f"Reminder {i}"},
                    "dedupe_key": f"batch-limited:{i}",
                }
                for i in range(5)
            ]
            ids = outgoing.queue_many(session=session, channel="sms", messages=messages, now=clock.now())
        with thread_worker(app), sweeping(app):
            wait_for(lambda: sum(r.status == "sent" for r in rows(db, ids)) == 3, timeout=60)
            wait_for(lambda: sum(bool(r.last_error) for r in rows(db, ids)) == 2, timeout=30)
            time.sleep(0.5)
        assert provider.deliveries() == 3
        held = [r for r in rows(db, ids) if r.status != "sent"]
        assert {r.status for r in held} == {"pending"}
        assert all(open_delivery_job(db, r.id).due_at == r.next_attempt_at for r in held)
        assert all((r.held_by, r.held_until) == ("pacing", r.next_attempt_at) for r in held)


def test_a_clinic_sets_lower_instagram_and_whatsapp_limits_but_not_above_metas(client, tenant):
    """Issue 74: `instagram` and `whatsapp` were refused ("Unknown field") though the docs offer them."""
    lower = {"instagram": "50/hour", "whatsapp": "80 per 10 minutes"}
    resp = client.put(
        "/api/clinic", json={"settings": {"provider_rate_limits": lower}}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["settings"]["provider_rate_limits"] == {
        "instagram": "50/hour",
        "whatsapp": "80 per 10 minutes",
    }
    for too_many in ("201/hour", "10/minute", "500/day"):
        resp = client.put(
            "/api/clinic",
            json={"settings": {"provider_rate_limits": {"instagram": too_many}}},
            headers=tenant.headers(),
        )
        errors = resp.get_json()["errors"]["json"]["settings"]["provider_rate_limits"]["instagram"]
        assert resp.status_code == 422 and "at most 200 messages an hour" in errors[0], too_many
