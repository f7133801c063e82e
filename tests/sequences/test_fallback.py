"""A step's fallback channel through the API, real workers, the local SMTP server, SendGrid's signed
events and the Twilio stand-in: a bounced email's step goes by SMS once (the bounce reported twice),
a family opted out of SMS gets neither and the step says why, an opt-out of the step's own channel
sends by the other at once, and a text to a number that is not one goes by email."""

from __future__ import annotations

import pytest

from app.domains.automation.models import AutomationStep
from tests.automation.outreachkit import (
    call,
    email,
    enroll,
    enrollment_row,
    make_sequence,
    messages_to,
    process_events,
    sms,
    steps_of,
)
from tests.consultations.kit import E164, clinic_and_lead, providers
from tests.engagement.kit import sendgrid_key
from tests.intake.test_sendgrid_events import about, post_events, sg_event
from tests.intake.test_twilio import signed_post
from tests.leadkit import create_lead
from tests.workers import thread_worker, wait_for


@pytest.fixture
def key(app, monkeypatch):
    return sendgrid_key(app, monkeypatch)


STATUS = "http://localhost/api/providers/twilio/status"


def sequence_with_fallback(client, tenant, first: dict, fallback: str) -> dict:
    return make_sequence(client, tenant, [{**first, "fallback_channel": fallback}, call(1, "days")])


def tenant_name(client, tenant) -> str:
    return client.get("/api/clinic", headers=tenant.headers()).get_json()["name"]


def first_step(db, lead_id: int) -> AutomationStep:
    return steps_of(db, lead_id)[0]


def bounce(client, private, message) -> None:
    """SendGrid reports the email bounced, and posts the same batch again (it heard no answer)."""
    event = sg_event(
        email="jane@example.com", event="bounce", type="bounce", reason="550 5.1.1", **about(message)
    )
    for _ in range(2):
        assert post_events(client, private, [event]).status_code == 200


def test_a_bounced_emails_step_goes_by_sms_once(app, client, db, tenant, key, monkeypatch):
    with providers(app, monkeypatch) as (mailbox, texts):
        lead = clinic_and_lead(client, tenant, quiet_hours=None)
        sequence = sequence_with_fallback(client, tenant, email(), "sms")
        made = enroll(client, tenant, lead["id"], sequence["id"])
        with thread_worker(app):
            wait_for(lambda: mailbox.messages, timeout=30)
            bounce(client, key, mailbox.messages[0])
            wait_for(lambda: texts.messages, timeout=30)
        process_events(app, db)
        assert len(mailbox.messages) == 1 and len(texts.messages) == 1
    [text] = texts.messages
    assert text["To"] == E164 and "Hi Jane, we would love to see you." in text["Body"]
    assert [m.channel for m in messages_to(db, lead["id"])] == ["email", "sms"]
    step = first_step(db, lead["id"])
    assert step.status == "done" and step.result["fallback"] == "sent by sms after the email bounced"
    assert step.result["channel"] == "email" and step.result["fallback_channel"] == "sms"
    # The bounce opted the address out of email, which ends the sequence as any opt-out does.
    assert enrollment_row(db, made["id"]).end_reason == "opted_out"
    shown = client.get(f"/api/leads/{lead['id']}/automation", headers=tenant.headers())
    assert shown.status_code == 200 and "sent by sms after the email bounced" in shown.get_data(as_text=True)


def test_a_family_opted_out_of_sms_gets_neither_and_the_step_says_why(
    app,
    client,
    db,
    tenant,
    key,
    monkeypatch,
):
    with providers(app, monkeypatch) as (mailbox, texts):
        lead = clinic_and_lead(client, tenant, quiet_hours=None)
        changed = client.put(f"/api/leads/{lead['id']}", json={"sms_opt_out": True}, headers=tenant.headers())
        assert changed.status_code == 200, changed.get_json()
        sequence = sequence_with_fallback(client, tenant, email(), "sms")
        enroll(client, tenant, lead["id"], sequence["id"])
        with thread_worker(app):
            wait_for(lambda: mailbox.messages, timeout=30)
            bounce(client, key, mailbox.messages[0])
            wait_for(lambda: first_step(db, lead["id"]).status == "failed", timeout=30)
        process_events(app, db)
        assert texts.messages == []
    assert [m.channel for m in messages_to(db, lead["id"])] == ["email"]
    step = first_step(db, lead["id"])
    assert step.result["reason"] == "the email bounced; not sent by sms either: the lead opted out of sms"


def test_opted_out_of_the_steps_own_channel_it_goes_by_the_other_at_once(
    app, client, db, tenant, monkeypatch
):
    with providers(app, monkeypatch) as (mailbox, texts):
        lead = clinic_and_lead(client, tenant, quiet_hours=None)
        changed = client.put(
            f"/api/leads/{lead['id']}", json={"email_opt_out": True}, headers=tenant.headers()
        )
        assert changed.status_code == 200, changed.get_json()
        enroll(client, tenant, lead["id"], sequence_with_fallback(client, tenant, email(), "sms")["id"])
        with thread_worker(app):
            wait_for(lambda: texts.messages, timeout=30)
        assert mailbox.messages == []
    step = first_step(db, lead["id"])
    assert step.status == "done" and step.result["channel"] == "sms"
    assert step.result["fallback"] == "sent by sms: the lead opted out of email"


def test_a_text_to_a_number_that_is_not_one_goes_by_email(app, client, db, tenant, monkeypatch):
    with providers(app, monkeypatch) as (mailbox, texts):
        texts.invalid_numbers.add(E164)  # Twilio answers 400, error 21211
        lead = clinic_and_lead(client, tenant, quiet_hours=None)
        enroll(client, tenant, lead["id"], sequence_with_fallback(client, tenant, sms(), "email")["id"])
        with thread_worker(app):
            wait_for(lambda: mailbox.messages, timeout=30)
        process_events(app, db)
        assert texts.messages == [] and len(mailbox.messages) == 1
    [message] = mailbox.messages
    [plain] = [part for part in message.walk() if part.get_content_type() == "text/plain"]
    assert "Hi Jane, any questions?" in plain.get_payload(decode=True).decode()
    assert message["Subject"] == f"A message from {tenant_name(client, tenant)}"  # an SMS has no subject
    step = first_step(db, lead["id"])
    assert step.result["fallback"] == "sent by email after the number cannot take texts"


def test_a_fallback_must_be_the_other_channel(client, tenant):
    for step in (
        {**email(), "fallback_channel": "email"},
        {**call(), "fallback_channel": "sms"},
        {**sms(), "fallback_channel": "fax"},
    ):
        resp = client.post("/api/sequences", json={"name": "Bad", "steps": [step]}, headers=tenant.headers())
        assert resp.status_code == 422 and resp.get_json()["errors"]["json"]["steps"]["0"]["fallback_channel"]


def test_a_landline_reported_by_twilios_callback_goes_by_email_once(app, client, db, tenant, monkeypatch):
    with providers(app, monkeypatch) as (mailbox, texts):
        lead = clinic_and_lead(client, tenant, quiet_hours=None)
        enroll(client, tenant, lead["id"], sequence_with_fallback(client, tenant, sms(), "email")["id"])
        with thread_worker(app):
            wait_for(lambda: texts.messages, timeout=30)
            wait_for(lambda: messages_to(db, lead["id"])[0].status == "sent", timeout=30)
            [text] = texts.messages
            # Twilio accepted it, then could not deliver: 30006, a landline. Reported twice: once.
            landline = {"MessageSid": text["sid"], "MessageStatus": "undelivered", "ErrorCode": "30006"}
            for _ in range(2):
                assert signed_post(client, STATUS, landline).status_code == 200
            wait_for(lambda: mailbox.messages, timeout=30)
        process_events(app, db)
        assert len(mailbox.messages) == 1 and len(texts.messages) == 1
    step = first_step(db, lead["id"])
    assert step.result["fallback"] == "sent by email after the number cannot take texts"
    assert [m.channel for m in messages_to(db, lead["id"])] == ["sms", "email"]


def test_a_passing_sms_failure_does_not_fall_back(app, client, db, tenant, monkeypatch):
    with providers(app, monkeypatch) as (mailbox, texts):
        lead = clinic_and_lead(client, tenant, quiet_hours=None)
        enroll(client, tenant, lead["id"], sequence_with_fallback(client, tenant, sms(), "email")["id"])
        with thread_worker(app):
            wait_for(lambda: texts.messages, timeout=30)
            wait_for(lambda: messages_to(db, lead["id"])[0].status == "sent", timeout=30)
            [text] = texts.messages
            # 30003: the handset was off; it may well take the next text.
            off = {"MessageSid": text["sid"], "MessageStatus": "undelivered", "ErrorCode": "30003"}
            assert signed_post(client, STATUS, off).status_code == 200
        process_events(app, db)
        assert mailbox.messages == []
    assert "fallback" not in first_step(db, lead["id"]).result


def test_an_email_the_smtp_server_refuses_for_good_goes_by_sms(app, client, db, tenant, monkeypatch):
    with providers(app, monkeypatch) as (mailbox, texts):
        mailbox.refuse.add("jane@example.com")  # 550 5.1.1 User unknown
        lead = clinic_and_lead(client, tenant, quiet_hours=None)
        enroll(client, tenant, lead["id"], sequence_with_fallback(client, tenant, email(), "sms")["id"])
        with thread_worker(app):
            wait_for(lambda: texts.messages, timeout=30)
        process_events(app, db)
        assert mailbox.messages == [] and len(texts.messages) == 1
    email_row, sms_row = messages_to(db, lead["id"])
    assert (email_row.channel, email_row.status, sms_row.channel) == ("email", "failed", "sms")
    assert first_step(db, lead["id"]).result["fallback"] == "sent by sms after the email bounced"


def test_a_late_bounce_after_the_family_answered_sends_nothing_more(
    app, client, db, tenant, key, monkeypatch
):
    with providers(app, monkeypatch) as (mailbox, texts):
        lead = clinic_and_lead(client, tenant, quiet_hours=None)
        enroll(client, tenant, lead["id"], sequence_with_fallback(client, tenant, email(), "sms")["id"])
        with thread_worker(app):
            wait_for(lambda: mailbox.messages, timeout=30)
            answered = {"type": "SMS", "direction": "INBOUND", "notes": "Thanks, I will call you"}
            path = f"/api/leads/{lead['id']}/activities"
            logged = client.post(path, json=answered, headers=tenant.headers())
            assert logged.status_code == 201, logged.get_json()
            bounce(client, key, mailbox.messages[0])
            wait_for(lambda: first_step(db, lead["id"]).status == "failed", timeout=30)
        process_events(app, db)
        assert texts.messages == []
    reason = first_step(db, lead["id"]).result["reason"]
    assert reason.startswith("the email bounced; not sent by sms either: the lead got in touch")


def test_a_family_with_no_email_address_gets_the_email_step_by_sms(app, client, db, tenant, monkeypatch):
    with providers(app, monkeypatch) as (mailbox, texts):
        clinic_and_lead(client, tenant, quiet_hours=None)
        phone_only = create_lead(client, tenant, role="clinic_admin", first_name="Sam", phone="415-555-0199")
        sequence = sequence_with_fallback(client, tenant, email(), "sms")
        enroll(client, tenant, phone_only["id"], sequence["id"])
        with thread_worker(app):
            wait_for(lambda: texts.messages, timeout=30)
        assert mailbox.messages == [] and "Hi Sam" in texts.messages[0]["Body"]
    step = first_step(db, phone_only["id"])
    assert step.result["fallback"] == "sent by sms: the lead has no email address"
