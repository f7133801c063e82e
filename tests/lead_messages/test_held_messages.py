"""Held means said (issue 74 item 6): a text held back by quiet hours answers when it goes and why
(`held_until`, `held_by`) in the API, and the staff's thread, lead page and timeline say "held until
8:00 AM (quiet hours)" in the clinic's time rather than "Queued"."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tests.automation.outreachkit import configure_clinic, lead_with, zone_at_local_hour
from tests.console.test_console_pages import log_in
from tests.conversations.test_conversations import thread
from tests.lead_messages.kit import send

PHONE = "(415) 555-2671"
SAID = "held until 8:00 AM (quiet hours)"


def test_a_text_held_by_quiet_hours_says_until_when_and_why(app, client, tenant):
    configure_clinic(client, tenant)
    night = zone_at_local_hour(23)  # the clinic's quiet hours (20:00-08:00) hold texts now
    resp = client.put("/api/clinic", json={"timezone": night}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    lead = lead_with(client, tenant, phone=PHONE)
    sent = send(client, tenant, lead["id"], channel="sms", body="Hi, it is the clinic")
    until = datetime.fromisoformat(sent["held_until"])
    assert sent["held_by"] == "quiet_hours" and sent["status"] == "pending"
    assert (until.utcoffset().total_seconds(), until.astimezone(ZoneInfo(night)).strftime("%H:%M")) == (
        0,
        "08:00",
    )
    [message] = thread(client, tenant, lead["id"])["items"]
    assert (message["held_until"], message["held_by"], message["status"]) == (
        sent["held_until"],
        "quiet_hours",
        "queued",
    )

    console = app.test_client()
    log_in(console, tenant, role="treatment_coordinator")
    lead_page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    timeline = lead_page[lead_page.index('<ol id="thread"') :].split("</ol>")[0]
    assert SAID in timeline and "Queued" not in timeline and "quiet_hours" not in lead_page
    inbox_thread = console.get(f"/console/inbox/leads/{lead['id']}").get_data(as_text=True)
    assert SAID in inbox_thread and "quiet_hours" not in inbox_thread


def test_a_text_sent_in_the_day_is_not_held(client, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    sent = send(client, tenant, lead["id"], channel="sms", body="Hi")
    assert (sent["held_until"], sent["held_by"]) == (None, None)
    [message] = thread(client, tenant, lead["id"])["items"]
    assert (message["held_until"], message["held_by"]) == (None, None)
