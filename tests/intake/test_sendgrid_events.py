"""SendGrid's Event Webhook as it really calls: ECDSA-signed JSON; a hard bounce opts the address out
and is `message.bounced`; `delivered` and `open` stamp the email whose id our X-SMTPAPI header gave."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.domains.intake.inbound import sendgrid
from app.domains.intake.inbound.models import ProviderDelivery
from app.domains.outbound.models import Notification
from app.domains.privacy import retention
from app.platform import clock
from app.platform.events.models import DomainEvent
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    enrollment_row,
    lead_with,
    make_sequence,
    process_events,
    sms,
)
from tests.intake import test_twilio as twilio_kit
from tests.leadkit import create_lead
from tests.outbound.kit import use
from tests.outbound.test_unsubscribe import email_to_lead

URL = "/api/providers/sendgrid/events"


@pytest.fixture
def key(app, monkeypatch):
    """A test key pair; its public half configured as SendGrid's verification key (base64 DER)."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    use(monkeypatch, app.config["SETTINGS"], sendgrid_event_public_key=base64.b64encode(der).decode())
    return private


def post_events(client, private, events: list, *, tamper: bytes | None = None):
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    signature = base64.b64encode(private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    return client.post(
        URL,
        data=tamper or body,
        content_type="application/json",
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": signature,
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )


def sg_event(**fields) -> dict:
    """An event as SendGrid posts it: its own sg_event_id (a batch posted again carries the same
    ones) and the unix time it happened (now unless given)."""
    return {"sg_event_id": uuid.uuid4().hex, "timestamp": int(time.time()), **fields}


def opted_out(client, tenant, lead_id: int) -> bool:
    return client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()["email_opt_out"]


def test_a_hard_bounce_opts_the_address_out_and_a_bad_signature_is_401(client, tenant, key):
    lead = lead_with(client, tenant)  # jane@example.com
    other = create_lead(client, tenant, email="sam@example.com", first_name="Sam")
    soft = sg_event(email="sam@example.com", event="bounce", type="blocked")
    hard = sg_event(email="JANE@example.com", event="bounce", type="bounce")
    forged = json.dumps([{"email": "sam@example.com", "event": "spamreport"}]).encode()
    assert post_events(client, key, [soft], tamper=forged).status_code == 401
    assert client.post(URL, json=[hard]).status_code == 401  # unsigned
    resp = post_events(client, key, [soft, hard, sg_event(email="x@example.com", event="delivered")])
    assert resp.status_code == 200
    assert resp.get_json() == {"received": 3, "opted_out": 1, "updated": 0, "ignored": 0}
    assert opted_out(client, tenant, lead["id"]) is True
    assert opted_out(client, tenant, other["id"]) is False  # a soft bounce is not an opt-out
    spam = post_events(client, key, [sg_event(email="sam@example.com", event="spamreport")])
    assert spam.get_json()["opted_out"] == 1 and opted_out(client, tenant, other["id"]) is True


def about(message) -> dict:
    """The fields SendGrid's events carry about an email we sent: our unique_args, echoed as
    top-level fields, and the Message-ID it was given (smtp-id)."""
    return {**json.loads(message["X-SMTPAPI"])["unique_args"], "smtp-id": message["Message-ID"]}


def stamp(moment) -> int:
    return int(clock.as_utc(moment).timestamp())


def notification(db, notification_id: int) -> Notification:
    with db.unit_of_work() as session:
        return session.get(Notification, notification_id)


def test_delivered_and_open_stamp_the_email_once_whatever_their_order(
    app, client, db, tenant, key, monkeypatch
):
    lead, message = email_to_lead(app, client, tenant, monkeypatch)
    ours = about(message)
    notification_id = int(ours["notification_id"])
    sent = notification(db, notification_id)
    assert sent.status == "sent" and sent.lead_id == lead["id"] and sent.delivered_at is None
    delivered_at, opened_at = int(time.time()) - 60, int(time.time()) - 30
    opened = sg_event(email="jane@example.com", event="open", timestamp=opened_at, **ours)
    delivered = sg_event(email="jane@example.com", event="delivered", timestamp=delivered_at, **ours)
    # The open arrives first: the email was delivered, at the latest then.
    assert post_events(client, key, [opened]).get_json()["updated"] == 1
    row = notification(db, notification_id)
    assert stamp(row.opened_at) == stamp(row.delivered_at) == opened_at
    # The delivery's own event, late: its earlier time stands; sent again: nothing changes.
    assert post_events(client, key, [delivered]).get_json()["updated"] == 1
    assert post_events(client, key, [delivered, opened]).get_json()["updated"] == 0
    row = notification(db, notification_id)
    assert (stamp(row.delivered_at), stamp(row.opened_at)) == (delivered_at, opened_at)
    assert row.status == "sent"
    # Another address under our id, or an id that is not ours: not this email's events.
    stranger = {**delivered, "sg_event_id": uuid.uuid4().hex, "email": "sam@example.com"}
    stranger["smtp-id"] = "<other@example.com>"
    unknown = {**delivered, "sg_event_id": uuid.uuid4().hex, "notification_id": "999999"}
    unknown["smtp-id"] = "<other@example.com>"
    assert post_events(client, key, [stranger, unknown]).get_json()["updated"] == 0
    resp = client.get("/api/notifications?channel=email", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    [listed] = [n for n in resp.get_json() if n["id"] == notification_id]
    assert listed["opened_at"] and listed["delivered_at"]


def bounced_events(db) -> list[dict]:
    with db.unit_of_work() as session:
        stmt = sa.select(DomainEvent).where(DomainEvent.type == "message.bounced").order_by(DomainEvent.id)
        return [event.payload for event in session.scalars(stmt)]


def test_a_hard_bounce_is_message_bounced_once_and_ends_the_sequence(
    app, client, db, tenant, key, monkeypatch
):
    lead, message = email_to_lead(app, client, tenant, monkeypatch)
    ours = about(message)
    # Opted out of email already (so the opt-out cannot be what ends it), texted by a sequence.
    resp = client.put(
        f"/api/leads/{lead['id']}",
        json={"email_opt_out": True, "phone": "(415) 555-2671"},
        headers=tenant.headers(),
    )
    assert resp.status_code == 200, resp.get_json()
    process_events(app, db)
    made = enroll(
        client, tenant, lead["id"], make_sequence(client, tenant, [sms(amount=1, unit="days")])["id"]
    )
    process_events(app, db)
    row = enrollment_row(db, made["id"])
    assert row.status == "active", row.end_reason
    other = create_lead(client, tenant, email="sam@example.com", first_name="Sam")
    bounce = sg_event(
        email="jane@example.com", event="bounce", type="bounce", reason="550 5.1.1 no such user", **ours
    )
    dropped = sg_event(email="sam@example.com", event="dropped", reason="Bounced Address")
    for _ in range(2):  # SendGrid posts a batch again when it heard no answer: once
        assert post_events(client, key, [bounce, dropped]).status_code == 200
    assert bounced_events(db) == [
        {
            "lead_id": lead["id"],
            "channel": "email",
            "notification_id": int(ours["notification_id"]),
            "hard": True,
        },
        {"lead_id": other["id"], "channel": "email", "notification_id": None, "hard": True},
    ]
    row = notification(db, int(ours["notification_id"]))
    assert row.status == "failed" and "no such user" in row.last_error
    process_events(app, db)
    row = enrollment_row(db, made["id"])
    assert (row.status, row.end_reason) == ("unenrolled", "bounced")


def test_a_replayed_event_is_ignored(client, tenant, key):
    lead = lead_with(client, tenant)  # jane@example.com
    complaint = sg_event(email="jane@example.com", event="spamreport")
    assert post_events(client, key, [complaint]).get_json()["opted_out"] == 1
    # The clinic hears from Jane and records her new consent; the complaint, posted again, changes nothing.
    consent = {
        "email_opt_out": False,
        "consent_reason": "Jane asked by phone",
        "consent_source": "phone_call",
    }
    resp = client.put(f"/api/leads/{lead['id']}", json=consent, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    replay = post_events(client, key, [complaint])
    assert replay.status_code == 200 and replay.get_json() == {
        "received": 1,
        "opted_out": 0,
        "updated": 0,
        "ignored": 1,
    }
    assert opted_out(client, tenant, lead["id"]) is False


def test_events_outside_the_time_window_or_without_an_id_are_ignored(client, tenant, key):
    lead = lead_with(client, tenant)  # jane@example.com
    now = int(time.time())
    old = sg_event(email="jane@example.com", event="spamreport", timestamp=now - 49 * 3600)
    ahead = sg_event(email="jane@example.com", event="spamreport", timestamp=now + 3600)
    untimed = {**sg_event(email="jane@example.com", event="spamreport"), "timestamp": "yesterday"}
    anonymous = {"email": "jane@example.com", "event": "spamreport", "timestamp": now}
    resp = post_events(client, key, [old, ahead, untimed, anonymous])
    assert resp.status_code == 200 and resp.get_json()["ignored"] == 4
    assert opted_out(client, tenant, lead["id"]) is False
    # Late within the window (SendGrid retries for a day): acted on.
    late = sg_event(email="jane@example.com", event="spamreport", timestamp=now - 47 * 3600)
    assert post_events(client, key, [late]).get_json()["opted_out"] == 1
    assert opted_out(client, tenant, lead["id"]) is True


def _deliveries(db) -> set[tuple[str, str]]:
    with db.unit_of_work() as session:
        return set(session.execute(sa.select(ProviderDelivery.provider, ProviderDelivery.delivery_id)))


def _received(db, delivery_id: str, at) -> None:
    """Make a remembered delivery as if it had arrived `at`."""
    with db.unit_of_work() as session:
        session.execute(
            sa.update(ProviderDelivery)
            .where(ProviderDelivery.delivery_id == delivery_id)
            .values(received_at=at)
        )


def test_the_daily_retention_sweep_forgets_old_sendgrid_ids_but_never_twilios(
    app, client, db, tenant, key, monkeypatch
):
    """Issue 42: the replay memory does not grow forever. A SendGrid id older than the event window
    (and the clock skew) is forgotten by the daily retention sweep: its event is refused by age. A
    recent one stays, and its replay is still ignored; Twilio's ids stay whatever their age (its
    signature carries no time)."""
    use(monkeypatch, app.config["SETTINGS"], sms_token=twilio_kit.AUTH_TOKEN)
    configure_clinic(client, tenant, sms_number=twilio_kit.CLINIC_NUMBER)
    lead_with(client, tenant, phone=twilio_kit.PHONE)
    stop = twilio_kit.signed_post(client, twilio_kit.INBOUND, twilio_kit.text("STOP", sid="SM-old-stop"))
    assert stop.status_code == 200
    old, edge, recent = (sg_event(email="nobody@example.com", event="delivered") for _ in range(3))
    assert post_events(client, key, [old, edge, recent]).get_json()["ignored"] == 0
    now = clock.now()
    _received(
        db, old["sg_event_id"], now - sendgrid.EVENT_WINDOW - sendgrid.CLOCK_SKEW - timedelta(minutes=1)
    )
    _received(db, edge["sg_event_id"], now - sendgrid.EVENT_WINDOW)  # its event may still be in the window
    _received(db, "SM-old-stop", now - timedelta(days=400))
    assert ("twilio_sms", "SM-old-stop") in _deliveries(db)

    retention.erase_expired_leads(db=db, now=now)

    assert _deliveries(db) == {
        ("sendgrid_event", edge["sg_event_id"]),
        ("sendgrid_event", recent["sg_event_id"]),
        ("twilio_sms", "SM-old-stop"),
    }
    replay = post_events(client, key, [recent])
    assert replay.status_code == 200 and replay.get_json()["ignored"] == 1
