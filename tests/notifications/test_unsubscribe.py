"""Email to a lead: Date, Message-ID, and RFC 8058 one-click unsubscribe that works without a login."""

from __future__ import annotations

import urllib.parse

from tests.automation.outreachkit import configure_clinic, lead_with
from tests.messaging.kit import send
from tests.notifications.fakes import smtp_server
from tests.notifications.kit import FAST_DELIVERY, smtp_settings, use
from tests.workers import thread_worker, wait_for


def test_an_email_to_a_lead_has_one_click_unsubscribe_that_opts_it_out(app, client, db, tenant, monkeypatch):
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
        )
        send(client, tenant, lead["id"], channel="email", subject="Your visit", body="Hi {{ first_name }}")
        with thread_worker(app):
            wait_for(lambda: server.messages, timeout=30)
    [message] = server.messages
    assert message["Date"] and message["Message-ID"]
    assert message["Reply-To"].startswith(f"reply+{lead['id']}.") and message["Reply-To"].endswith(
        "@reply.example"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = message["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://engine.example/api/unsubscribe/")
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
