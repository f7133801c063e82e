"""The follow-up cadence page (/console/settings/cadence, issue 74 item 1): the clinic's cadence
read and saved in the browser through PUT /api/clinic's own schema and use case. Through Flask's
test client (the HTML a person reads, a refusal beside its field with nothing saved, who may open
it) and one journey in Debian's Chromium (the keyboard, then the API answers what was saved)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from playwright.sync_api import expect

from tests.console.test_browser import log_in as log_in_browser
from tests.console.test_console_pages import csrf_of, log_in

PAGE = "/console/settings/cadence"
DEFAULT = {
    "touches": [
        {"after_business_days": 1, "channels": ["call", "sms"]},
        {"after_business_days": 2, "channels": ["call"]},
    ],
    "reply_window_business_days": 1,
}


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def said(html: str) -> str:
    """The text a person reads (tags dropped, spaces squeezed)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def saved_cadence(client, tenant) -> dict | None:
    resp = client.get("/api/clinic", headers=tenant.headers())
    assert resp.status_code == 200
    return (resp.get_json()["settings"] or {}).get("cadence")


def form(**changes) -> dict:
    """The page's form as the default cadence fills it, with `changes`."""
    return {
        "touch-1-wait": "1", "touch-1-channels": ["call", "sms"], "touch-2-wait": "2",
        "touch-2-channels": ["call"], "reply_window": "1", **changes,
    }  # fmt: skip


def post(console, data: dict):
    token = csrf_of(console.get(PAGE).get_data(as_text=True))
    return console.post(PAGE, data={**data, "csrf_token": token})


def test_the_page_says_the_default_cadence_in_sentences(console, tenant):
    log_in(console, tenant, role="clinic_admin")
    resp = console.get(PAGE)
    assert resp.status_code == 200
    text = said(resp.get_data(as_text=True))
    assert "After the 1st failed attempt wait business day(s), then: Call Text Email" in text
    assert "After the 2nd failed attempt" in text
    assert "Then, after the 3rd, the break-up email." in text
    html = resp.get_data(as_text=True)
    assert re.search(r'name="touch-1-wait"[^>]*value="1"', html)
    assert re.search(r'name="touch-2-wait"[^>]*value="2"', html)
    ticked = re.findall(r'name="(touch-\d-channels)" value="(\w+)" checked', html)
    assert ticked == [("touch-1-channels", "call"), ("touch-1-channels", "sms"), ("touch-2-channels", "call")]
    # No JSON, no field keys of the API for a person to read.
    assert "after_business_days" not in html and "reply_window_business_days" not in html
    assert "{" not in text


def test_a_bad_value_is_said_beside_its_field_and_nothing_is_saved(console, client, tenant):
    log_in(console, tenant, role="clinic_admin")
    resp = post(console, form(**{"touch-2-wait": "45", "touch-1-channels": []}))
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    wait_error = re.search(r'id="err-touch-2-wait">([^<]+)<', html)
    assert wait_error and "less than or equal to 30" in wait_error.group(1)
    assert re.search(r'name="touch-2-wait"[^>]*value="45"[^>]*aria-invalid="true"', html)
    assert re.search(r'id="err-touch-1-channels">[^<]+<', html)
    assert saved_cadence(client, tenant) is None  # the default still
    words = post(console, form(reply_window="soon"))
    assert words.status_code == 422
    assert re.search(r'id="err-reply_window">Not a valid integer', words.get_data(as_text=True))
    assert saved_cadence(client, tenant) is None


def test_touches_are_added_removed_saved_and_reset_to_the_default(console, client, tenant):
    log_in(console, tenant, role="clinic_admin")
    added = post(console, {**form(), "do": "add"})
    assert added.status_code == 200
    assert "After the 3rd failed attempt" in said(added.get_data(as_text=True))
    assert "Not saved yet" in said(added.get_data(as_text=True))
    assert saved_cadence(client, tenant) is None
    three = form(**{"touch-3-wait": "3", "touch-3-channels": ["email"], "touch-1-remove": "yes"})
    saved = post(console, {**three, "do": "save"})
    assert saved.status_code == 303
    assert saved_cadence(client, tenant) == {
        "touches": [
            {"after_business_days": 2, "channels": ["call"]},
            {"after_business_days": 3, "channels": ["email"]},
        ],
        "reply_window_business_days": 1,
    }
    shown = said(console.get(PAGE).get_data(as_text=True))
    assert "Cadence saved." in shown and "After the 3rd failed attempt" not in shown
    reset = post(console, {**form(), "do": "reset"})
    assert reset.status_code == 303
    assert saved_cadence(client, tenant) is None  # the engine's default (automation/attempts.py)


def test_only_who_configures_the_clinic_may_open_or_save_it(app, tenant):
    for role in ("treatment_coordinator", "front_desk", "doctor"):
        with app.test_client() as other:
            log_in(other, tenant, role=role)
            assert other.get(PAGE).status_code == 403
            token = csrf_of(other.get("/console/login").get_data(as_text=True))
            assert other.post(PAGE, data={**form(), "csrf_token": token}).status_code == 403


def test_an_admin_makes_the_second_touch_a_text_after_two_business_days_in_the_browser(
    client, tenant, live_server, page
):
    log_in_browser(page, live_server, tenant, role="clinic_admin")
    page.goto(f"{live_server}/console/rules")
    page.get_by_role("link", name="The follow-up cadence").click()
    expect(page).to_have_url(re.compile(r"/console/settings/cadence$"))
    second = page.get_by_role("group", name="After the 2nd failed attempt", exact=True)
    second.get_by_label("Call").uncheck()
    second.get_by_label("Text").check()
    wait = second.get_by_role("spinbutton")
    wait.fill("2")
    wait.press("Enter")  # the form's first button: Save
    expect(page.get_by_text("Cadence saved.")).to_be_visible()
    assert saved_cadence(client, tenant) == {
        "touches": [
            {"after_business_days": 1, "channels": ["call", "sms"]},
            {"after_business_days": 2, "channels": ["sms"]},
        ],
        "reply_window_business_days": 1,
    }
