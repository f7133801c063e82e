"""Engagement through the API, a real worker and the local SMTP server: an email's links go through
the engine's own redirect to the message's own URLs (no open redirect), a click is link.clicked once,
the clinic can turn tracking off; SendGrid's opens are email.opened once, a machine's open marked."""

from __future__ import annotations

import re
import urllib.parse

import pytest
import sqlalchemy as sa

from app.domains.engagement import links
from app.platform.events.models import DomainEvent
from tests.automation.kit import tasks_of
from tests.automation.outreachkit import configure_clinic, lead_with, process_events
from tests.engagement.kit import sendgrid_key
from tests.intake.test_sendgrid_events import about, post_events, sg_event
from tests.lead_messages.kit import send
from tests.outbound.fakes import smtp_server
from tests.outbound.kit import FAST_DELIVERY, smtp_settings, use
from tests.workers import thread_worker, wait_for

BODY = "Hi {{ first_name }}, our price guide: https://clinic.example/prices?plan=a&b=1. Book at https://clinic.example/book"
PRICES, BOOK = "https://clinic.example/prices?plan=a&b=1", "https://clinic.example/book"


@pytest.fixture
def key(app, monkeypatch):
    return sendgrid_key(app, monkeypatch)


def sent_emails(app, client, tenant, monkeypatch, lead, count: int = 1) -> list:
    """`count` emails to the lead through a real worker and SMTP server, as they arrived."""
    settings = app.config["SETTINGS"]
    with smtp_server() as (server, port):
        use(monkeypatch, settings, **FAST_DELIVERY, **smtp_settings(port))
        use(monkeypatch, settings, public_base_url="https://engine.example")
        for number in range(count):
            send(client, tenant, lead["id"], channel="email", subject=f"Prices {number}", body=BODY)
        with thread_worker(app):
            wait_for(lambda: len(server.messages) >= count, timeout=30)
    return list(server.messages)


def text_of(message) -> str:
    [part] = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    return part.get_payload(decode=True).decode()


def html_of(message) -> str:
    [part] = [p for p in message.walk() if p.get_content_type() == "text/html"]
    return part.get_payload(decode=True).decode()


def tracked_paths(text: str) -> list[str]:
    return [
        urllib.parse.urlsplit(url.rstrip(".")).path
        for url in re.findall(r"https://engine\.example/r/\S+", text)
    ]


def events(db, type_: str) -> list[dict]:
    with db.unit_of_work() as session:
        stmt = sa.select(DomainEvent).where(DomainEvent.type == type_).order_by(DomainEvent.id)
        return [event.payload for event in session.scalars(stmt)]


def test_an_emails_links_go_through_the_redirect_to_its_own_urls(app, client, db, tenant, monkeypatch):
    configure_clinic(client, tenant, quiet_hours=None)
    lead = lead_with(client, tenant)
    [message] = sent_emails(app, client, tenant, monkeypatch, lead)
    text = text_of(message)
    assert PRICES not in text and BOOK not in text  # the family sees the engine's short links
    prices, book = tracked_paths(text)
    assert "&amp;" not in text and "jane" not in text.split("/r/")[1].lower()  # the token names no one
    html = html_of(message)
    assert f'href="https://engine.example{prices}"' in html and f'href="https://engine.example{book}"' in html
    assert ">https://clinic.example/prices?plan=a&amp;b=1</a>" in html  # the reader sees where it goes

    first = client.get(prices)
    assert first.status_code == 302 and first.headers["Location"] == PRICES
    assert client.get(prices).headers["Location"] == PRICES  # a second click: counted, not news
    assert client.get(book).headers["Location"] == BOOK
    ours = int(about(message)["notification_id"])
    assert sorted((e["notification_id"], e["link"]) for e in events(db, "link.clicked")) == [
        (ours, 0),
        (ours, 1),
    ]
    assert all(e["lead_id"] == lead["id"] for e in events(db, "link.clicked"))

    # A tampered token, a token of a link the message has not, another message's: a 404 page.
    tampered = prices[:-2] + ("AA" if not prices.endswith("AA") else "BB")
    secret = app.config["SETTINGS"].secret_key
    for path in (
        tampered,
        f"/r/{links.click_token(secret, ours, 2, BOOK)}",
        f"/r/{links.click_token(secret, 10**6, 0, PRICES)}",
    ):
        refused = client.get(path)
        assert (
            refused.status_code == 404
            and refused.mimetype == "text/html"
            and "Location" not in refused.headers
        )
    seen = client.get(f"/api/leads/{lead['id']}/engagement", headers=tenant.headers("front_desk")).get_json()
    [engaged] = seen["messages"]
    assert engaged["notification_id"] == ours and [(c["link"], c["clicks"]) for c in engaged["clicks"]] == [
        (0, 2),
        (1, 1),
    ]


def test_with_the_clinics_tracking_off_the_links_go_out_untouched(app, client, db, tenant, monkeypatch):
    configure_clinic(client, tenant, quiet_hours=None, track_links=False)
    lead = lead_with(client, tenant)
    [message] = sent_emails(app, client, tenant, monkeypatch, lead)
    assert PRICES in text_of(message) and BOOK in text_of(message)
    assert "/r/" not in text_of(message) and "/r/" not in html_of(message)


def test_a_sendgrid_open_is_email_opened_once_and_a_machine_open_is_marked(
    app,
    client,
    db,
    tenant,
    key,
    monkeypatch,
):
    configure_clinic(client, tenant, quiet_hours=None)
    lead = lead_with(client, tenant)
    read, prefetched = sent_emails(app, client, tenant, monkeypatch, lead, count=2)
    person = about(read)
    apple = about(prefetched)
    opens = [sg_event(email="jane@example.com", event="open", **person) for _ in range(2)]
    machine = sg_event(email="jane@example.com", event="open", sg_machine_open=True, **apple)
    assert post_events(client, key, [*opens, machine]).status_code == 200
    assert events(db, "email.opened") == [
        {"lead_id": lead["id"], "notification_id": int(person["notification_id"]), "machine": False}
    ]
    seen = client.get(f"/api/leads/{lead['id']}/engagement", headers=tenant.headers()).get_json()
    by_id = {m["notification_id"]: m for m in seen["messages"]}
    assert (
        by_id[int(person["notification_id"])]["opens"],
        by_id[int(person["notification_id"])]["machine_opens"],
    ) == (2, 0)
    marked = by_id[int(apple["notification_id"])]
    assert (marked["opens"], marked["machine_opens"], marked["opened_at"]) == (0, 1, None)
    since = "2000-01-01T00:00:00Z"
    stats = client.get(f"/api/engagement/stats?since={since}", headers=tenant.headers()).get_json()
    assert (stats["emails_sent"], stats["emails_opened"], stats["emails_opened_by_machine_only"]) == (2, 1, 1)
    process_events(app, db)  # the events are processed like any (rules may use them)


def test_a_rule_on_link_clicked_follows_up_on_the_click_once(app, client, db, tenant, monkeypatch):
    configure_clinic(client, tenant, quiet_hours=None)
    rule = {
        "name": "Clicked the price guide",
        "trigger": "link.clicked",
        "actions": [{"type": "create_task", "title": "Call {{ first_name }}: looked at prices"}],
    }
    made = client.post("/api/follow-up-rules", json=rule, headers=tenant.headers())
    assert made.status_code == 201, made.get_json()
    lead = lead_with(client, tenant)
    [message] = sent_emails(app, client, tenant, monkeypatch, lead)
    process_events(app, db)
    prices, _ = tracked_paths(text_of(message))
    for _ in range(2):
        assert client.get(prices).status_code == 302
    process_events(app, db)
    tasks = tasks_of(app, lead["id"])
    assert [t.title for t in tasks].count("Call Jane: looked at prices") == 1


def test_a_link_a_merge_field_brought_in_is_not_tracked_and_the_redirect_goes_only_where_it_was_made_for(
    app, client, db, tenant, monkeypatch
):
    """Issue 73 #6: a lead named "https://evil.example/phish" (anyone may send in a web form) and a
    template "Hi {{ first_name }}": the message reads as written, its own link alone goes through
    the redirect, and no token of the engine's leads to evil.example."""
    evil = "https://evil.example/phish"
    configure_clinic(client, tenant, quiet_hours=None)
    lead = lead_with(client, tenant, first_name=evil)
    [message] = sent_emails(app, client, tenant, monkeypatch, lead)
    text, html = text_of(message), html_of(message)
    assert text.startswith(f"Hi {evil}, our price guide:")  # still readable, untouched
    assert f"Hi {evil}," in html and f">{evil}</a>" not in html  # plain text, no link made of it
    tracked = tracked_paths(text)
    assert [client.get(path).headers["Location"] for path in tracked] == [PRICES, BOOK]

    # A token of a link of this message, made for another URL: not followed.
    ours = int(about(message)["notification_id"])
    forged = client.get(f"/r/{links.click_token(app.config['SETTINGS'].secret_key, ours, 0, evil)}")
    assert forged.status_code == 404 and "Location" not in forged.headers
