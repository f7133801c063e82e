"""Consent holds at send time: a message to a lead meets the contact policy of the moment it goes."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    lead_with,
    make_sequence,
    messages_to,
    open_jobs,
    run,
    sms,
    steps_of,
    zone_at_local_hour,
)
from tests.intake.test_twilio import AUTH_TOKEN, CLINIC_NUMBER, INBOUND, signed_post, text
from tests.lead_messages.kit import send
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import FAST_DELIVERY, sms_settings, use
from tests.workers import thread_worker, wait_for

PHONE = "(415) 555-2671"


@pytest.fixture
def provider(app, monkeypatch):
    with sms_provider(token=AUTH_TOKEN) as (fake, url):
        use(
            monkeypatch,
            app.config["SETTINGS"],
            **FAST_DELIVERY,
            **sms_settings(url, token=AUTH_TOKEN),
        )
        fake.numbers.add(CLINIC_NUMBER)  # the clinic's own number is in the engine's Twilio account
        yield fake


def notes(db, lead_id: int) -> list[str]:
    with db.unit_of_work() as session:
        stmt = sa.select(LeadActivity).where(LeadActivity.lead_id == lead_id, LeadActivity.type == "NOTE")
        return [a.notes for a in session.scalars(stmt.order_by(LeadActivity.id))]


def status_of(db, lead_id: int) -> str:
    [message] = messages_to(db, lead_id)
    return message.status


def test_an_sms_held_by_quiet_hours_then_a_stop_sends_nothing_in_the_morning(
    app, client, db, tenant, provider
):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    night = zone_at_local_hour(21)  # evening where the lead lives
    lead = lead_with(client, tenant, phone=PHONE, timezone=night)
    queued = send(client, tenant, lead["id"], channel="sms", body="Hi {{ first_name }}, call us back?")
    assert queued["held_until_reason"] and "quiet hours" in queued["held_until_reason"]
    assert signed_post(client, INBOUND, text("STOP", sid="SM-night")).status_code == 200
    [job] = open_jobs(db, "notification.deliver")
    local = job.due_at.astimezone(ZoneInfo(night))
    assert (local.hour, local.minute) == (8, 0)
    run(app, job, job.due_at)  # 08:00: the delivery job, with the clock of the morning
    assert status_of(db, lead["id"]) == "cancelled"
    [message] = messages_to(db, lead["id"])
    assert "opted out of sms" in message.last_error
    assert any("SMS not sent" in n and "opted out" in n for n in notes(db, lead["id"]))
    assert provider.requests == 0


def test_do_not_contact_set_while_queued_cancels_with_a_real_worker(app, client, db, tenant, provider):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER, quiet_hours=None)
    lead = lead_with(client, tenant, phone=PHONE)
    send(client, tenant, lead["id"], channel="sms", body="See you soon")
    resp = client.put(f"/api/leads/{lead['id']}", json={"do_not_contact": True}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    with thread_worker(app):
        wait_for(lambda: status_of(db, lead["id"]) == "cancelled", timeout=30)
        time.sleep(0.5)
    assert provider.requests == 0
    assert any("do not contact" in n for n in notes(db, lead["id"]))
    # An admin's retry of it cannot get past the policy either: cancelled is not retryable.
    resp = client.post("/api/notifications/retry", json={"channel": "sms"}, headers=tenant.headers())
    assert resp.status_code == 200 and resp.get_json() == {"requeued": 0}


def test_quiet_hours_of_the_moment_of_sending_defer_the_message(app, client, db, tenant, provider):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)  # midday at the clinic: queued to go at once
    send(client, tenant, lead["id"], channel="sms", body="See you soon")
    night = zone_at_local_hour(23)  # the lead's zone is corrected before the worker gets to it
    resp = client.put(f"/api/leads/{lead['id']}", json={"timezone": night}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    with thread_worker(app):
        wait_for(lambda: "quiet hours" in (messages_to(db, lead["id"])[0].last_error or ""), timeout=30)
        time.sleep(0.5)
    [message] = messages_to(db, lead["id"])
    assert message.status == "pending" and message.attempts == 0 and provider.requests == 0
    local = message.next_attempt_at.astimezone(ZoneInfo(night))
    assert (local.hour, local.minute) == (8, 0)


def test_a_retried_manual_message_with_the_same_key_sends_once(app, client, db, tenant, provider):
    configure_clinic(client, tenant, quiet_hours=None)
    lead = lead_with(client, tenant, phone=PHONE)
    headers = {**tenant.headers("treatment_coordinator"), "Idempotency-Key": "click-1"}
    body = {"channel": "sms", "body": "Hi {{ first_name }}, call us back?"}
    first = client.post(f"/api/leads/{lead['id']}/messages", json=body, headers=headers)
    again = client.post(f"/api/leads/{lead['id']}/messages", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["notification_id"] == first.get_json()["notification_id"]
    other = {**headers, "Idempotency-Key": "click-2"}
    assert client.post(f"/api/leads/{lead['id']}/messages", json=body, headers=other).status_code == 201
    with thread_worker(app):
        wait_for(lambda: {m.status for m in messages_to(db, lead["id"])} == {"sent"}, timeout=30)
        time.sleep(0.5)
    assert len(messages_to(db, lead["id"])) == 2 and provider.deliveries() == 2


def test_the_outreach_caps_hold_at_send_time_without_counting_the_message_itself(
    app, client, db, tenant, provider
):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER, quiet_hours=None)
    lead = lead_with(client, tenant, phone=PHONE)
    sequence = make_sequence(client, tenant, [sms("one"), sms("two")])
    enroll(client, tenant, lead["id"], sequence["id"])
    assert [step.status for step in steps_of(db, lead["id"])] == ["done", "done"]
    assert [m.status for m in messages_to(db, lead["id"])] == ["pending", "pending"]  # both under the caps
    # Before they go, the clinic allows one automated message per lead in all.
    configure_clinic(
        client, tenant, sms_number=CLINIC_NUMBER, quiet_hours=None, max_automated_messages_per_lead=1
    )
    with thread_worker(app, concurrency=1):
        wait_for(lambda: {m.status for m in messages_to(db, lead["id"])} == {"sent", "cancelled"}, timeout=30)
        time.sleep(0.5)
    assert provider.deliveries() == 1  # the first went: itself it does not count
    [cancelled] = [m for m in messages_to(db, lead["id"]) if m.status == "cancelled"]
    assert "limit of 1 automated messages per lead reached" in cancelled.last_error
    assert any("SMS not sent" in n and "limit of 1 automated messages" in n for n in notes(db, lead["id"]))
