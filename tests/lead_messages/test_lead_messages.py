"""POST /api/leads/:id/messages through a real worker to the local SMTP server: the contact policy,
the timeline, permissions, tenancy, and the template's usage and reply counts."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.domains.activities import rules as activity_rules
from app.domains.automation.language.context import failed_attempts_in_a_row
from app.platform import clock
from tests.automation.outreachkit import (
    configure_clinic,
    lead_with,
    messages_to,
    post_inbound,
    zone_at_local_hour,
)
from tests.lead_messages.kit import email_template, make_template, send, template_counts
from tests.outbound.fakes import smtp_server
from tests.outbound.kit import FAST_DELIVERY, all_in, smtp_settings, use
from tests.workers import thread_worker, wait_for

PHONE, E164 = "(415) 555-2671", "+14155552671"


@pytest.fixture
def fast_delivery(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, **FAST_DELIVERY)
    return settings


def timeline(client, tenant, lead_id: int) -> list[dict]:
    resp = client.get(f"/api/leads/{lead_id}/activities", headers=tenant.headers("front_desk"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_a_template_email_arrives_once_and_is_an_attempt_on_the_timeline(
    app, client, db, tenant, fast_delivery, monkeypatch
):
    configure_clinic(client, tenant)
    template = email_template(client, tenant)
    lead = lead_with(client, tenant, first_name="Maria", patient_first_name="Leo")
    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, **smtp_settings(port))
        with thread_worker(app):
            sent = send(client, tenant, lead["id"], channel="email", template_id=template["id"])
            wait_for(lambda: all_in(db, [sent["notification_id"]], {"sent"}), timeout=30)
            time.sleep(0.5)  # a stray second send would land now
    assert sent["subject"] == "Your visit to Smile Orthodontics" and sent["scheduled_for"]
    assert list(server.accepted.values()) == [1]
    [mail] = server.messages
    assert mail["To"] == "jane@example.com" and mail["Subject"] == "Your visit to Smile Orthodontics"
    assert (
        "Hi Maria, we look forward to seeing Leo." in mail.get_payload()[0].get_payload(decode=True).decode()
    )
    [logged] = [a for a in timeline(client, tenant, lead["id"]) if a["id"] == sent["activity_id"]]
    assert (logged["type"], logged["direction"]) == ("EMAIL", "OUTBOUND")
    assert logged["created_by"] == tenant.users["treatment_coordinator"].id
    assert activity_rules.is_attempt(
        type=logged["type"], direction=logged["direction"], outcome=logged["outcome"]
    )
    # An email just sent has not gone unanswered yet; once its reply window (a business day; the
    # clinic is open all day) has passed with no answer, it is a failed attempt.
    with db.unit_of_work() as session:
        assert failed_attempts_in_a_row(session, lead["id"], clock.now()) == 0
        assert failed_attempts_in_a_row(session, lead["id"], clock.now() + timedelta(days=2)) == 1
    assert template_counts(client, tenant, template["id"]) == (1, 0)


def test_texts_without_a_template_and_bad_input_name_the_field(client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    sent = send(client, tenant, lead["id"], channel="sms", body="Hi {{ first_name }}, call us back?")
    assert sent["body"] == "Hi Jane, call us back?" and sent["template_id"] is None
    [message] = messages_to(db, lead["id"])
    assert message.kind == "manual_message" and message.to_address == E164
    cases = [
        ({"channel": "email", "body": "Hi"}, "subject"),
        ({"channel": "sms"}, "body"),
        ({"channel": "sms", "body": "{{ nickname }}"}, "body"),
        ({"channel": "fax", "body": "Hi"}, "channel"),
        ({"channel": "sms", "template_id": 0}, "template_id"),
        ({"channel": "sms", "template_id": 999_999}, "template_id"),
        ({"channel": "email", "template_id": make_template(client, tenant)["id"]}, "template_id"),
    ]
    for body, field in cases:
        resp = client.post(f"/api/leads/{lead['id']}/messages", json=body, headers=tenant.headers())
        assert resp.status_code == 422 and field in resp.get_json()["errors"]["json"], (body, resp.get_json())


def test_the_contact_policy_holds_back_or_delays_a_message(client, db, tenant):
    configure_clinic(client, tenant)
    opted_out = lead_with(client, tenant, phone=PHONE, sms_opt_out=True)
    refused = send(client, tenant, opted_out["id"], expect=409, channel="sms", body="Hi")
    assert "opted out of sms" in refused["message"]
    no_contact = lead_with(client, tenant, phone=PHONE, do_not_contact=True)
    assert (
        "do not contact"
        in send(client, tenant, no_contact["id"], expect=409, channel="sms", body="Hi")["message"]
    )
    assert messages_to(db, opted_out["id"]) == messages_to(db, no_contact["id"]) == []
    night = lead_with(client, tenant, phone=PHONE, timezone=zone_at_local_hour(23))
    moved = send(client, tenant, night["id"], channel="sms", body="Hi")
    assert "quiet hours" in moved["held_until_reason"] and moved["status"] == "pending"
    [message] = messages_to(db, night["id"])
    assert message.next_attempt_at == datetime.fromisoformat(moved["scheduled_for"])
    assert message.next_attempt_at.astimezone(ZoneInfo(zone_at_local_hour(23))).hour == 8


def test_permissions_and_another_clinics_lead_or_template_is_404(client, tenant, make_tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    for role in ("front_desk", "doctor"):
        send(client, tenant, lead["id"], expect=403, role=role, channel="sms", body="Hi")
    other = make_tenant("Other Clinic")
    foreign_template = make_template(client, other)
    stranger = lead_with(client, other, phone=PHONE)
    send(client, tenant, stranger["id"], expect=404, channel="sms", body="Hi")
    resp = client.post(
        f"/api/leads/{lead['id']}/messages",
        json={"channel": "sms", "template_id": foreign_template["id"]},
        headers=tenant.headers(),
    )
    assert resp.status_code == 422 and "template_id" in resp.get_json()["errors"]["json"]
    assert (
        client.post(f"/api/leads/{lead['id']}/messages", json={"channel": "sms", "body": "x"}).status_code
        == 401
    )


def test_usage_and_reply_counts_follow_the_definition(client, tenant):
    """A reply: an inbound email/SMS after a message from the template, before the next outbound."""
    configure_clinic(client, tenant)
    template = make_template(client, tenant)
    answered = lead_with(client, tenant, phone=PHONE)
    send(client, tenant, answered["id"], channel="sms", template_id=template["id"])
    reply = {"channel": "sms", "from": E164, "body": "Yes please", "message_id": "SM1"}
    assert post_inbound(client, tenant.clinic, reply).status_code == 200
    assert template_counts(client, tenant, template["id"]) == (1, 1)

    # A second message to the same lead, then a call: the answer after the call is the call's.
    send(client, tenant, answered["id"], channel="sms", template_id=template["id"])
    call = {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "no_answer"}
    resp = client.post(f"/api/leads/{answered['id']}/activities", json=call, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    late = {**reply, "message_id": "SM2", "body": "Sorry, missed you"}
    assert post_inbound(client, tenant.clinic, late).status_code == 200
    assert template_counts(client, tenant, template["id"]) == (2, 1)

    # Texts typed by hand are no template's use.
    send(client, tenant, answered["id"], channel="sms", body="Hi")
    assert template_counts(client, tenant, template["id"]) == (2, 1)
    [listed] = client.get("/api/message-templates", headers=tenant.headers("front_desk")).get_json()
    assert (listed["usage_count"], listed["reply_count"]) == (2, 1)
