"""The open pixel of an SMTP email where the clinic allows it (a mail proxy's fetch marked as a
machine's), a text's links through the redirect, and a rule's send action with a fallback channel."""

from __future__ import annotations

import re
import urllib.parse

from app.domains.engagement import links
from tests.automation.outreachkit import configure_clinic, lead_with, process_events
from tests.consultations.kit import clinic_and_lead, providers
from tests.engagement.test_tracking import BODY, PRICES, events, html_of, sent_emails
from tests.lead_messages.kit import send
from tests.workers import thread_worker, wait_for

APPLE_PROXY = "Mozilla/5.0"  # Apple Mail Privacy Protection's fetch: the bare product token
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.1"


def pixel_of(message) -> str:
    [url] = re.findall(r'<img src="(https://engine\.example/o/[^"]+\.gif)"', html_of(message))
    return urllib.parse.urlsplit(url).path


def fetch(client, path: str, agent: str):
    answer = client.get(path, headers={"User-Agent": agent})
    assert answer.status_code == 200 and answer.mimetype == "image/gif" and answer.data.startswith(b"GIF89a")
    return answer


def test_the_pixel_counts_a_persons_open_once_and_marks_a_proxys(app, client, db, tenant, monkeypatch):
    configure_clinic(client, tenant, quiet_hours=None, open_pixel=True)
    lead = lead_with(client, tenant)
    [message] = sent_emails(app, client, tenant, monkeypatch, lead)
    pixel = pixel_of(message)
    fetch(client, pixel, APPLE_PROXY)
    fetch(client, pixel, GMAIL_PROXY)
    assert events(db, "email.opened") == []  # proxies' fetches, as the email arrived: not a person
    fetch(client, pixel, THUNDERBIRD)
    fetch(client, pixel, THUNDERBIRD)
    fetch(client, "/o/not-a-token.gif", THUNDERBIRD)  # still the image; nothing recorded
    [opened] = events(db, "email.opened")
    assert opened["lead_id"] == lead["id"] and opened["machine"] is False
    seen = client.get(f"/api/leads/{lead['id']}/engagement", headers=tenant.headers()).get_json()
    [engaged] = seen["messages"]
    assert (engaged["opens"], engaged["machine_opens"]) == (2, 2) and engaged["opened_at"]
    process_events(app, db)


def test_without_the_clinics_leave_an_email_has_no_pixel(app, client, db, tenant, monkeypatch):
    configure_clinic(client, tenant, quiet_hours=None)
    [message] = sent_emails(app, client, tenant, monkeypatch, lead_with(client, tenant))
    assert "/o/" not in html_of(message)


def test_where_machine_opens_count_a_proxys_fetch_is_an_open(app, client, db, tenant, monkeypatch):
    configure_clinic(client, tenant, quiet_hours=None, open_pixel=True, count_machine_opens=True)
    lead = lead_with(client, tenant)
    [message] = sent_emails(app, client, tenant, monkeypatch, lead)
    fetch(client, pixel_of(message), APPLE_PROXY)
    fetch(client, pixel_of(message), APPLE_PROXY)
    [opened] = events(db, "email.opened")
    assert opened["machine"] is True


def test_a_texts_links_go_through_the_redirect(app, client, db, tenant, monkeypatch):
    with providers(app, monkeypatch) as (_, texts):
        monkeypatch.setattr(app.config["SETTINGS"], "public_base_url", "https://engine.example")
        lead = clinic_and_lead(client, tenant, quiet_hours=None)
        send(client, tenant, lead["id"], channel="sms", body=BODY)
        with thread_worker(app):
            wait_for(lambda: texts.messages, timeout=30)
    [text] = texts.messages
    assert PRICES not in text["Body"]
    [first, _] = re.findall(r"https://engine\.example(/r/[A-Za-z0-9_.-]+[A-Za-z0-9_-])", text["Body"])
    assert client.get(first).headers["Location"] == PRICES
    token = first.removeprefix("/r/")
    notification_id, index, _ = links.read_click_token(app.config["SETTINGS"].secret_key, token)
    assert index == 0 and events(db, "link.clicked") == [
        {"lead_id": lead["id"], "notification_id": notification_id, "link": 0}
    ]


def test_a_rules_send_action_may_name_the_other_channel_as_its_fallback(client, tenant):
    action = {"type": "send_email", "subject": "Hi", "body": "Hi {{ first_name }}"}
    body = {"name": "Welcome", "trigger": "lead.created", "conditions": [], "actions": [action]}
    good = {**body, "actions": [{**action, "fallback_channel": "sms"}]}
    made = client.post("/api/follow-up-rules", json=good, headers=tenant.headers())
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["actions"][0]["fallback_channel"] == "sms"
    bad = {**body, "name": "Bad", "actions": [{**action, "fallback_channel": "email"}]}
    refused = client.post("/api/follow-up-rules", json=bad, headers=tenant.headers())
    assert refused.status_code == 422
    assert "fallback_channel" in str(refused.get_json()["errors"])
