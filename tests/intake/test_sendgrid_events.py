"""SendGrid's Event Webhook as it really calls: ECDSA-signed JSON; a hard bounce opts the address out."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.automation.outreachkit import lead_with
from tests.leadkit import create_lead
from tests.notifications.kit import use

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


def opted_out(client, tenant, lead_id: int) -> bool:
    return client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()["email_opt_out"]


def test_a_hard_bounce_opts_the_address_out_and_a_bad_signature_is_401(client, tenant, key):
    lead = lead_with(client, tenant)  # jane@example.com
    other = create_lead(client, tenant, email="sam@example.com", first_name="Sam")
    soft = {"email": "sam@example.com", "event": "bounce", "type": "blocked", "timestamp": 1}
    hard = {"email": "JANE@example.com", "event": "bounce", "type": "bounce", "timestamp": 1}
    forged = json.dumps([{"email": "sam@example.com", "event": "spamreport"}]).encode()
    assert post_events(client, key, [soft], tamper=forged).status_code == 401
    assert client.post(URL, json=[hard]).status_code == 401  # unsigned
    resp = post_events(client, key, [soft, hard, {"email": "x@example.com", "event": "delivered"}])
    assert resp.status_code == 200 and resp.get_json() == {"received": 3, "opted_out": 1}
    assert opted_out(client, tenant, lead["id"]) is True
    assert opted_out(client, tenant, other["id"]) is False  # a soft bounce is not an opt-out
    spam = post_events(client, key, [{"email": "sam@example.com", "event": "spamreport", "timestamp": 2}])
    assert spam.get_json()["opted_out"] == 1 and opted_out(client, tenant, other["id"]) is True
