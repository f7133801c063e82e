"""The console's frame, as each role meets it (issue 76, items 1 and 8): where logging in lands, the
header's menu (only pages the role may open and has a use for), channels and live events said as
words from the wording table, and a header that fits a phone's width with a long email."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.console import wording
from app.domains.auth.models import User
from app.platform.stream.document import EVENT_TYPES
from tests.conftest import TEST_PASSWORD
from tests.console.test_console_pages import csrf_of
from tests.console.test_every_page import PHONE, _wider_than_the_screen
from tests.console.test_lead_page import with_rows
from tests.leadkit import create_lead

# Where each role's day starts after logging in (and on /console/).
HOMES = {
    "front_desk": "/console/leads/new",  # the quick entry
    "treatment_coordinator": "/console/today",
    "clinic_admin": "/console/today",  # not Failures: the setup and health are linked from Today
    "doctor": "/console/reports",  # analytics only: the reports
}
# What each role's menu offers, in order.
MENUS = {
    "front_desk": ["Today", "Schedule", "New lead", "Inbox", "Board", "Import"],
    "treatment_coordinator": [
        "Today", "Schedule", "New lead", "Inbox", "Board", "Import", "Team", "Bulk jobs", "My figures",
    ],
    "clinic_admin": [
        "Today", "Schedule", "New lead", "Inbox", "Board", "Import", "Team", "Bulk jobs", "My figures",
        "Reports", "Analytics", "Rules", "Sequences", "Failures", "Health", "Settings",
    ],
    "doctor": ["Reports", "Analytics"],
}  # fmt: skip
LONG_EMAIL = "maria.fernanda.gonzalez-rodriguez.frontdesk@brightsmiles.com"  # 60 characters


def _log_in(console, email: str):
    """The login form, followed to wherever it lands."""
    token = csrf_of(console.get("/console/login").get_data(as_text=True))
    form = {"email": email, "password": TEST_PASSWORD, "csrf_token": token}
    return console.post("/console/login", data=form, follow_redirects=True)


def _dismiss_the_checklist(app, tenant) -> None:
    """A new clinic's admin lands on the setup checklist until it is dismissed (or done): dismissed."""
    with app.test_client() as console:
        _log_in(console, tenant.users["clinic_admin"].email)
        token = csrf_of(console.get("/console/settings").get_data(as_text=True))
        assert console.post("/console/settings/dismiss", data={"csrf_token": token}).status_code == 303


def _menu(html: str) -> list[tuple[str, str]]:
    """The header menu's links: (label, href)."""
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    links = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav)
    return [(html_lib.unescape(text), href) for href, text in links]


@pytest.mark.parametrize("role", list(HOMES))
def test_each_role_lands_on_its_day_after_login_and_on_the_consoles_root(app, tenant, role):
    _dismiss_the_checklist(app, tenant)
    with app.test_client() as console:
        landed = _log_in(console, tenant.users[role].email)
        assert landed.status_code == 200 and landed.request.path == HOMES[role]
        assert console.get("/console/").headers["Location"] == HOMES[role]
        html = landed.get_data(as_text=True)
    # Today links an admin to the setup and health (what they used to land on), and only an admin.
    is_admin = role == "clinic_admin"
    assert ('href="/console/settings" id="today-setup"' in html) is is_admin
    assert ('href="/console/health" id="today-health"' in html) is is_admin


def test_a_new_clinics_admin_still_lands_on_the_setup_checklist(app, tenant):
    with app.test_client() as console:
        assert _log_in(console, tenant.users["clinic_admin"].email).request.path == "/console/settings"


@pytest.mark.parametrize("role", list(MENUS))
def test_each_roles_menu_offers_only_pages_it_may_open(app, tenant, role):
    with app.test_client() as console:
        landed = _log_in(console, tenant.users[role].email)
        entries = _menu(landed.get_data(as_text=True))
        assert [label for label, _ in entries] == MENUS[role]
        for label, href in entries:
            assert console.get(href).status_code == 200, (role, label)
    if role == "front_desk":
        assert "Bulk jobs" not in [label for label, _ in entries]


def test_channels_read_as_people_say_them_from_the_wording_table(app, client, tenant):
    assert [wording.channel(c) for c in ("sms", "email", "whatsapp", "instagram", "PHONE")] == [
        "Text", "Email", "WhatsApp", "Instagram", "Phone",
    ]  # fmt: skip
    assert wording.code("SMS") == "Text" and wording.code("WHATSAPP") == "WhatsApp"  # a task's type too
    lead = create_lead(client, tenant, first_name="Maria", last_name="Lopez", phone="(415) 555-0177")
    with_rows(client, tenant, lead["id"])  # a text sent to her
    with app.test_client() as console:
        _log_in(console, tenant.users["treatment_coordinator"].email)
        pages = {
            "lead": console.get(f"/console/leads/{lead['id']}").get_data(as_text=True),
            "inbox": console.get("/console/inbox").get_data(as_text=True),
        }
    assert re.search(r'class="meta">[^<]* · Text · ', pages["lead"]), "the text's channel in words"
    options = re.findall(r'<option value="(\w+)"[^>]*>([^<]+)</option>', pages["inbox"])
    named = {"sms": "Text", "email": "Email", "whatsapp": "WhatsApp", "instagram": "Instagram"}
    assert dict(options).items() >= named.items()
    for page in pages.values():
        assert not re.search(r">\s*(Sms|SMS|Whatsapp)\s*<", page) and " Sms " not in page


def test_the_live_panel_gets_its_sentences_from_the_wording_table(app, tenant):
    with app.test_client() as console:
        html = _log_in(console, tenant.users["treatment_coordinator"].email).get_data(as_text=True)
    header = html.split("</header>")[0]  # the live indicator sits in the header
    panel = re.search(r"id=\"live\"[^>]*data-words='([^']+)'", header).group(1)
    handed = json.loads(html_lib.unescape(panel))
    assert handed == wording.live_words()
    shown = set(EVENT_TYPES) - {"conversation.read", "conversation.status", "reset"}  # not news
    assert shown <= set(handed["events"]), "every event the panel lists has a sentence"
    assert all("." not in sentence for sentence in handed["events"].values())


def test_the_live_panel_says_each_event_as_a_sentence_never_its_code(
    app, tenant, live_server, page, monkeypatch
):
    """The stream stood in for by a fake EventSource (the real one: test_live_notifications.py) that
    sends one event of each type the panel shows, about Maria Lopez."""
    settings = app.config["SETTINGS"]
    monkeypatch.setattr(settings, "stream_url", f"{live_server}/no-stream")
    page.add_init_script(
        """window.EventSource = function () {
          var self = this, handlers = {};
          this.readyState = 1;
          this.addEventListener = function (type, fn) { handlers[type] = fn; };
          setTimeout(function () {
            if (self.onopen) self.onopen();
            var lead = { first_name: "Maria", last_name: "Lopez" };
            ["task.assigned", "lead.assigned", "task.overdue", "reply.received", "sla.warning"]
              .forEach(function (type, n) {
                handlers[type]({ lastEventId: String(n + 1),
                  data: JSON.stringify({ id: n + 1, type: type, lead: lead }) });
              });
            handlers["task.claimed"]({ lastEventId: "9",
              data: JSON.stringify({ id: 9, type: "task.claimed", task: { title: "Call back" } }) });
          }, 50);
        };
        window.EventSource.CLOSED = 2;"""
    )
    page.goto(f"{live_server}/console/login")
    page.fill("input[name=email]", tenant.users["treatment_coordinator"].email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#live-status")).to_have_text(wording.LIVE_STATUS["live"])
    items = page.locator("#live-items li")
    expect(items).to_have_count(6)
    assigned = page.locator("#live-items li[data-type='task.assigned']")
    expect(assigned).to_have_text("Task assigned: Maria Lopez")
    kinds = ("task.assigned", "lead.assigned", "task.overdue", "reply.received", "sla.warning")
    expected = [f"{wording.LIVE_EVENTS[kind]}: Maria Lopez" for kind in kinds]
    page.locator("#live > summary").click()  # the list opens under the header's live indicator
    said = items.all_inner_texts()
    assert said == [f"{wording.LIVE_EVENTS['task.claimed']}: Call back", *reversed(expected)]
    assert not any(re.search(r"\b[a-z]+\.[a-z_]+\b", text) for text in said), said  # no `task.assigned`


@pytest.mark.parametrize("role", ["clinic_admin", "front_desk"])
def test_the_header_fits_a_phone_with_a_long_email(app, client, tenant, live_server, page, role):
    with app.extensions["followup.db"].unit_of_work() as session:
        session.execute(sa.update(User).where(User.id == tenant.users[role].id).values(email=LONG_EMAIL))
    assert len(LONG_EMAIL) == 60
    create_lead(client, tenant, first_name="Rosa", last_name="Diaz")
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/console/login")
    page.fill("input[name=email]", LONG_EMAIL)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header nav")).to_be_visible()
    for path in ("/console/today", "/console/inbox"):
        page.goto(f"{live_server}{path}")
        assert not _wider_than_the_screen(page), path
        nav = page.locator("header nav")
        assert nav.evaluate("el => el.scrollWidth <= el.clientWidth"), f"{path}: the menu scrolls sideways"
        email = page.locator("header .user-email")
        expect(email).to_be_hidden()  # inside the closed user menu
        page.locator("header .user-menu summary").click()
        expect(email).to_have_text(LONG_EMAIL)
        box = email.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        assert not _wider_than_the_screen(page), f"{path} with the user menu open"
        expect(page.locator("header .user-menu button[type=submit]")).to_be_visible()  # Log out
