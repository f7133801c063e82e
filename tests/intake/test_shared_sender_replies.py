"""A reply to the platform's shared SMS_FROM is kept: the clinic's that last texted that phone from
it, else the platform operator's queue, from which the operator hands it to a clinic (issue 74)."""

from __future__ import annotations

import pytest

from tests.automation.outreachkit import configure_clinic, lead_with
from tests.intake.test_twilio import AUTH_TOKEN, INBOUND, PHONE, inbound_notes, signed_post, text
from tests.lead_messages.kit import send
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import FAST_DELIVERY, all_in, rows, sms_settings, use
from tests.workers import thread_worker, wait_for

PLATFORM_TOKEN = "platform-operator-token-0123456789abcdef"
OPERATOR = {"Authorization": f"Bearer {PLATFORM_TOKEN}"}
STRANGER = "+14155559876"


@pytest.fixture
def shared_sms(app, monkeypatch):
    """Texts go through the Twilio stand-in from the shared SMS_FROM (no clinic has its own number)."""
    with sms_provider(token=AUTH_TOKEN) as (_provider, url):
        settings = app.config["SETTINGS"]
        use(monkeypatch, settings, **FAST_DELIVERY, **sms_settings(url, token=AUTH_TOKEN))
        use(monkeypatch, settings, platform_token=PLATFORM_TOKEN)
        yield settings


def text_lead(app, client, db, tenant, lead_id: int, body: str) -> None:
    sent = send(client, tenant, lead_id, channel="sms", body=body)
    with thread_worker(app):
        wait_for(lambda: all_in(db, [sent["notification_id"]], {"sent"}), timeout=30)
    [row] = rows(db, [sent["notification_id"]])
    assert row.sender == app.config["SETTINGS"].sms_from  # recorded: the From it went from


def test_a_reply_to_the_shared_number_lands_with_the_clinic_that_last_texted_that_phone(
    app, client, db, tenant, make_tenant, shared_sms
):
    shared, other = shared_sms.sms_from, make_tenant()
    configure_clinic(client, tenant)
    configure_clinic(client, other)
    mine, theirs = lead_with(client, tenant, phone=PHONE), lead_with(client, other, phone=PHONE)
    text_lead(app, client, db, other, theirs["id"], "Hi from the other clinic")
    text_lead(app, client, db, tenant, mine["id"], "Can we call you today?")  # the newest
    assert signed_post(client, INBOUND, text("Yes after 5pm", sid="SM-r1", to=shared)).status_code == 200
    assert inbound_notes(db, mine["id"]) == ["Yes after 5pm"]
    assert inbound_notes(db, theirs["id"]) == []
    # Twilio retries it: kept once.
    assert signed_post(client, INBOUND, text("Yes after 5pm", sid="SM-r1", to=shared)).status_code == 200
    assert inbound_notes(db, mine["id"]) == ["Yes after 5pm"]
    assert client.get("/api/platform/unclaimed-messages", headers=OPERATOR).get_json() == []


def test_a_reply_nobody_texted_for_waits_for_the_operator_who_hands_it_to_a_clinic(
    app, client, db, tenant, make_tenant, shared_sms, monkeypatch
):
    shared, other = shared_sms.sms_from, make_tenant()
    configure_clinic(client, tenant)
    mine = lead_with(client, tenant, phone=PHONE)
    text_lead(app, client, db, tenant, mine["id"], "Can we call you today?")
    # A phone no clinic texted, and the family's answer after the clinic's window has passed.
    assert (
        signed_post(
            client, INBOUND, text("Who is this?", sid="SM-u1", sender=STRANGER, to=shared)
        ).status_code
        == 200
    )
    use(monkeypatch, shared_sms, shared_sender_reply_days=0)
    assert signed_post(client, INBOUND, text("Sorry, late reply", sid="SM-u2", to=shared)).status_code == 200
    assert inbound_notes(db, mine["id"]) == []
    queue = client.get("/api/platform/unclaimed-messages", headers=OPERATOR)
    assert queue.status_code == 200
    assert [(m["sender"], m["body"]) for m in queue.get_json()] == [
        (STRANGER, "Who is this?"),
        ("+14155552671", "Sorry, late reply"),
    ]
    # Nobody but the operator reads the queue.
    assert client.get("/api/platform/unclaimed-messages", headers=tenant.headers()).status_code in (401, 403)
    late = queue.get_json()[1]
    handed = client.post(
        f"/api/platform/unclaimed-messages/{late['id']}/clinic",
        json={"clinic_id": tenant.id},
        headers=OPERATOR,
    )
    assert handed.status_code == 200, handed.get_json()
    assert inbound_notes(db, mine["id"]) == ["Sorry, late reply"]
    again = client.post(
        f"/api/platform/unclaimed-messages/{late['id']}/clinic",
        json={"clinic_id": other.id},
        headers=OPERATOR,
    )
    assert again.status_code == 409
    stranger = queue.get_json()[0]
    unknown = client.post(
        f"/api/platform/unclaimed-messages/{stranger['id']}/clinic",
        json={"clinic_id": 2**31 - 1},
        headers=OPERATOR,
    )
    assert unknown.status_code == 404 and "clinic_id" in str(unknown.get_json())
    bad = client.post(
        f"/api/platform/unclaimed-messages/{stranger['id']}/clinic", json={"clinic_id": "x"}, headers=OPERATOR
    )
    assert bad.status_code == 422 and "clinic_id" in str(bad.get_json())
    # Handed to a clinic where no lead has the number: an unknown sender's thread in its inbox.
    assert (
        client.post(
            f"/api/platform/unclaimed-messages/{stranger['id']}/clinic",
            json={"clinic_id": other.id},
            headers=OPERATOR,
        ).status_code
        == 200
    )
    inbox = client.get("/api/conversations?view=unassigned", headers=other.headers())
    assert inbox.status_code == 200, inbox.get_json()
    [thread] = inbox.get_json()["items"]
    assert thread["contact"] == {"address": STRANGER, "channel": "sms"}
    assert thread["last_message"]["preview"] == "Who is this?"
    assert client.get("/api/platform/unclaimed-messages", headers=OPERATOR).get_json() == []
