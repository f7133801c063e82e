"""Email to a lead: Date, Message-ID, and RFC 8058 one-click unsubscribe that works without a login."""

from __future__ import annotations

import urllib.parse

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from tests.automation.outreachkit import configure_clinic, lead_with
from tests.lead_messages.kit import send
from tests.outbound.fakes import smtp_server
from tests.outbound.kit import FAST_DELIVERY, smtp_settings, use
from tests.workers import thread_worker, wait_for

INBOUND_SECRET = "inbound-parse-secret-0123456789"


def uris(message) -> list[str]:
    """The URIs of a received message's List-Unsubscribe, in order."""
    value = " ".join(str(message["List-Unsubscribe"]).split())
    return [uri.strip().strip("<>") for uri in value.split(",")]


def email_to_lead(app, client, tenant, monkeypatch):
    """A lead, and the email it was sent through a real worker and SMTP server, as it arrived."""
    settings = app.config["SETTINGS"]
    configure_clinic(client, tenant, quiet_hours=None)
    lead = lead_with(client, tenant)
    with smtp_server() as (server, port):
        use(monkeypatch, settings, **FAST_DELIVERY, **smtp_settings(port))
        use(
            monkeypatch,
            settings,
            public_base_url="https://engine.example",
            email_inbound_domain="reply.example",
            sendgrid_inbound_secret=INBOUND_SECRET,
        )
        send(client, tenant, lead["id"], channel="email", subject="Your visit", body="Hi {{ first_name }}")
        with thread_worker(app):
            wait_for(lambda: server.messages, timeout=30)
    [message] = server.messages
    return lead, message


def test_an_email_to_a_lead_has_one_click_unsubscribe_that_opts_it_out(app, client, db, tenant, monkeypatch):
    lead, message = email_to_lead(app, client, tenant, monkeypatch)
    assert message["Date"] and message["Message-ID"]
    assert message["Reply-To"].startswith(f"reply+{lead['id']}.") and message["Reply-To"].endswith(
        "@reply.example"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url, mailto = uris(message)
    assert url.startswith("https://engine.example/api/unsubscribe/")
    token = url.rpartition("/")[2]
    assert mailto == f"mailto:unsubscribe+{token}@reply.example?subject=unsubscribe"
    [text] = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    assert url in text.get_payload(decode=True).decode()
    path = urllib.parse.urlsplit(url).path
    # A GET (a link scanner) only shows the page.
    page = client.get(path)
    assert page.status_code == 200 and b'name="List-Unsubscribe"' in page.data
    got = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert got["email_opt_out"] is False
    # The mailbox provider's one-click POST, no login: opted out; again: still fine.
    for _ in range(2):
        resp = client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert resp.status_code == 200
    got = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert got["email_opt_out"] is True
    history = client.get("/api/audit-events?actor=unsubscribe_link", headers=tenant.headers())
    assert history.status_code == 200, history.get_json()
    [entry] = history.get_json()  # audited once: the second POST changed nothing
    assert entry["subject_id"] == str(lead["id"]) and entry["after"] == {"email_opt_out": True}
    # Another lead's id with this signature, or a made-up token: not found.
    lead_id, _, mac = path.rpartition("/")[2].partition(".")
    assert client.post(f"/api/unsubscribe/{int(lead_id) + 1}.{mac}").status_code == 404
    assert client.get("/api/unsubscribe/nonsense").status_code == 404


def test_an_email_to_the_unsubscribe_mailto_opts_the_lead_out_once(app, client, db, tenant, monkeypatch):
    lead, message = email_to_lead(app, client, tenant, monkeypatch)
    _, mailto = uris(message)
    address = mailto.removeprefix("mailto:").partition("?")[0]
    form = {
        "from": "Jane Doe <jane@example.com>",
        "to": address,
        "subject": "unsubscribe",
        "text": "",
        "headers": "Message-ID: <unsub-1@example.com>\nSubject: unsubscribe\n",
    }
    url = f"/api/providers/sendgrid/inbound/{INBOUND_SECRET}"
    first = client.post(url, data=form, content_type="multipart/form-data")
    assert first.status_code == 200 and first.get_json() == {
        "matched": True,
        "lead_id": lead["id"],
        "unsubscribed": True,
    }
    again = client.post(url, data=form, content_type="multipart/form-data")  # SendGrid posts it again
    assert again.get_json()["unsubscribed"] is False
    got = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert got["email_opt_out"] is True
    history = client.get("/api/audit-events?actor=unsubscribe_email", headers=tenant.headers()).get_json()
    [entry] = history
    assert entry["subject_id"] == str(lead["id"]) and entry["after"] == {"email_opt_out": True}
    with db.unit_of_work() as session:  # an opt-out, not a reply: nothing inbound on the timeline
        inbound = session.scalars(
            sa.select(LeadActivity).where(
                LeadActivity.lead_id == lead["id"], LeadActivity.direction == "INBOUND"
            )
        ).all()
    assert inbound == []
    # A token that is no lead's: nothing.
    forged = {**form, "to": f"unsubscribe+{lead['id']}.{'0' * 32}@reply.example"}
    assert client.post(url, data=forged, content_type="multipart/form-data").get_json() == {"matched": False}
