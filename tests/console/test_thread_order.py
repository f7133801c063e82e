"""A conversation reads as one (issue 76 item 2): on the lead page and in the inbox the messages run
oldest first and the reply box comes after the last of them; through Flask's test client."""

from __future__ import annotations

import re

import pytest

from tests.console.test_console_pages import log_in
from tests.leadkit import create_lead


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _reply(client, tenant, lead_id: int, body: str) -> None:
    resp = client.post(
        f"/api/leads/{lead_id}/conversation/messages",
        json={"channel": "sms", "body": body},
        headers={**tenant.headers("treatment_coordinator"), "Idempotency-Key": body},
    )
    assert resp.status_code in (200, 201, 202), resp.get_json()


@pytest.mark.parametrize("path", ["/console/leads/{id}", "/console/inbox/leads/{id}"])
def test_the_thread_runs_oldest_first_with_the_reply_box_after_it(client, console, tenant, path):
    lead = create_lead(client, tenant, first_name="Rosa", phone="(415) 555-0141")
    for body in ("First, from us", "Second, from us too"):
        _reply(client, tenant, lead["id"], body)
    log_in(console, tenant, "treatment_coordinator")
    html = console.get(path.format(id=lead["id"])).get_data(as_text=True)
    thread = html.index('<ol id="thread"')  # the inbox's list beside it shows the last message too
    first, second = html.index("First, from us", thread), html.index("Second, from us too", thread)
    reply_box = re.search(r'<form[^>]*class="fields reply"', html).start()
    assert first < second < reply_box
