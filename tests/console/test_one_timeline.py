"""The lead page's one timeline (issue 76 item 2): messages, calls, tasks made and done, stage moves
and consultations in one list, oldest first, each said as a sentence, the reply box after it; a
message is said once (not again as its activity); a role without PHI rights reads the sentences,
never a message's text or a call's notes. Through Flask's test client."""

from __future__ import annotations

import html as html_lib
import re
from datetime import timedelta

import pytest

from app.platform import clock
from tests.console.test_console_pages import log_in
from tests.leadkit import create_lead


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _entries(html: str) -> list[str]:
    listed = html.split('<ol id="thread"')[1].split("</ol>")[0]
    items = re.findall(r"<li\b.*?</li>", listed, re.S)
    return [re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", item))).strip() for item in items]


def _family_with_a_story(client, tenant) -> dict:
    lead = create_lead(client, tenant, first_name="Rosa", phone="(415) 555-0151")
    coordinator = tenant.headers("treatment_coordinator")
    earlier = clock.now() - timedelta(hours=2)
    for minutes, body in (
        (
            0,
            {
                "type": "PHONE_CALL",
                "direction": "OUTBOUND",
                "outcome": "voicemail",
                "notes": "Left a voicemail",
            },
        ),
        (30, {"type": "NOTE", "notes": "Mother prefers mornings"}),
    ):
        at = (earlier + timedelta(minutes=minutes)).isoformat()
        logged = client.post(
            f"/api/leads/{lead['id']}/activities", json={**body, "occurred_at": at}, headers=coordinator
        )
        assert logged.status_code == 201, logged.get_json()
    sent = client.post(
        f"/api/leads/{lead['id']}/conversation/messages",
        json={"channel": "sms", "body": "Hi Rosa, when suits you?"},
        headers=coordinator,
    )
    assert sent.status_code == 201, sent.get_json()
    task = client.post(
        f"/api/leads/{lead['id']}/tasks",
        json={"title": "Call Rosa back", "type": "CALL", "due_in_minutes": 30},
        headers=coordinator,
    )
    assert task.status_code == 201, task.get_json()
    moved = client.post(f"/api/leads/{lead['id']}/stage", json={"stage": "contacted"}, headers=coordinator)
    assert moved.status_code == 200, moved.get_json()
    return lead


def test_one_list_oldest_first_each_said_as_a_sentence_the_reply_box_after_it(client, console, tenant):
    lead = _family_with_a_story(client, tenant)
    log_in(console, tenant, "treatment_coordinator")
    html = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    said = _entries(html)
    call = next(i for i, e in enumerate(said) if "called the family: voicemail." in e)
    note = next(i for i, e in enumerate(said) if "added a note." in e)
    [message] = [i for i, e in enumerate(said) if "Hi Rosa, when suits you?" in e]  # once, not twice
    task = next(i for i, e in enumerate(said) if "Task “Call Rosa back” for" in e)
    stage = next(i for i, e in enumerate(said) if "moved the lead from New Lead to Contacted." in e)
    assert call < note < message and call < task and note < stage
    assert "Left a voicemail" in said[call] and "Mother prefers mornings" in said[note]
    assert html.count('id="conversation-h"') == 0 and html.count('<h2 id="timeline-h">') == 1
    assert html.index('<ol id="thread"') < re.search(r'<form[^>]*class="fields reply"', html).start()
    assert "PHONE_CALL" not in " ".join(said) and "STAGE_CHANGE" not in " ".join(said)


def test_a_role_without_phi_rights_reads_the_sentences_not_the_texts(client, console, tenant):
    lead = _family_with_a_story(client, tenant)
    log_in(console, tenant, "front_desk")
    html = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    said = " ".join(_entries(html))
    assert "called the family: voicemail." in said and "added a note." in said
    assert "Contacted" in said and "Call Rosa back" in said
    assert [text for text in ("Left a voicemail", "Mother prefers mornings", "Hi Rosa") if text in html] == []
