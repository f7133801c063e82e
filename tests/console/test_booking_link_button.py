"""The reply box's "Send the booking link" (issue 76 item 2): one press sends the family the clinic's
message with their own booking link, on the channel chosen, with nothing to type; through Flask's
test client as a coordinator."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.console.test_console_pages import csrf_of, log_in
from tests.leadkit import create_lead


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _form(html: str) -> dict:
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    return {"csrf_token": csrf_of(html), "idempotency_key": key}


def test_one_press_sends_the_family_their_booking_link(client, console, tenant):
    lead = create_lead(client, tenant, first_name="Rosa", phone="(415) 555-0121")
    log_in(console, tenant, "treatment_coordinator")
    page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert "Send the booking link" in page
    sent = console.post(
        f"/console/leads/{lead['id']}/reply",
        data={**_form(page), "channel": "sms", "body": "", "send": "booking_link"},
    )
    assert sent.status_code == 303, sent.get_data(as_text=True)[:800]
    thread = client.get(f"/api/leads/{lead['id']}/conversation", headers=tenant.headers()).get_json()
    [message] = thread["items"]
    assert message["channel"] == "sms" and message["body"].startswith("Hi Rosa, here is your link to book")
    # Their own link, as the booking page reads it: it opens that family's page.
    link = re.search(r"(https?://\S+/book/l/\S+)", message["body"]).group(1)
    assert console.get(urlsplit(link).path).status_code == 200
    assert "{{" not in message["body"]


def test_by_email_it_goes_with_a_subject_of_its_own(client, console, tenant):
    lead = create_lead(client, tenant, first_name="Ana", email="ana@example.com")
    log_in(console, tenant, "treatment_coordinator")
    page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    sent = console.post(
        f"/console/leads/{lead['id']}/reply",
        data={**_form(page), "channel": "email", "subject": "", "body": "", "send": "booking_link"},
    )
    assert sent.status_code == 303, sent.get_data(as_text=True)[:800]
    thread = client.get(f"/api/leads/{lead['id']}/conversation", headers=tenant.headers()).get_json()
    [message] = thread["items"]
    assert message["subject"].startswith("Book your consultation at")
