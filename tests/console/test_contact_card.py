"""The lead page's contact card (issue 76 item 2): how to reach the family at a glance, the phone a
link that dials, what they allow said in words; the rest of the fields one click away."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from tests.console.test_console_pages import log_in
from tests.leadkit import create_lead


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def card_of(html: str) -> str:
    return re.search(r'<section id="contact".*?</section>', html, re.S).group(0)


def words(fragment: str) -> str:
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def test_the_card_dials_writes_and_says_what_the_family_allows(client, console, tenant):
    lead = create_lead(
        client, tenant, first_name="Rosa", phone="(415) 555-0142", email="rosa@example.com", sms_opt_out=True
    )
    log_in(console, tenant, "treatment_coordinator")
    card = card_of(console.get(f"/console/leads/{lead['id']}").get_data(as_text=True))
    assert '<a href="tel:+14155550142">+1 415-555-0142</a>' in card
    assert '<a href="mailto:rosa@example.com">' in card
    said = words(card)
    assert "Messages No texts." in said, said
    assert "sms_opt_out" not in card and "Sms opt out" not in said


def test_a_family_that_asked_not_to_be_contacted_is_said_so(client, console, tenant):
    lead = create_lead(client, tenant, first_name="Ana", phone="(415) 555-0143", do_not_contact=True)
    log_in(console, tenant, "front_desk")
    card = words(card_of(console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)))
    assert "Do not contact: no calls and no messages." in card
