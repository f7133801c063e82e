"""The console's one stylesheet and its shell (docs/features/console.md, "The design system"): every page
each role may open links console.css and no other stylesheet; console.css names colours by its tokens
only (a literal colour outside :root would bypass them and their contrast); the live indicator sits in
the header, never above a page's heading, and fits a phone's width."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.console import wording
from app.platform.roles import ROLE_PERMISSIONS, Role
from tests.console.test_browser import log_in as log_in_browser
from tests.console.test_console_pages import log_in
from tests.console.test_every_page import PAGES, PHONE, _a_rule_and_a_sequence, _wider_than_the_screen
from tests.console.test_inbox_pages import unknown_sender
from tests.console.test_lead_page import with_rows
from tests.intake.test_twilio import twilio  # noqa: F401 - the fixture: Twilio's signing token
from tests.leadkit import create_lead

STYLESHEET = Path(__file__).parents[2] / "app" / "console" / "static" / "console.css"
LINK = re.compile(r"<link\b[^>]*\brel=\"?stylesheet\"?[^>]*>", re.I)
LITERAL_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?)\(", re.I)


def _header(html: str) -> str:
    return re.search(r"<header>(.*?)</header>", html, re.S).group(1)


@pytest.mark.usefixtures("twilio")
def test_every_page_links_the_one_stylesheet_and_holds_the_live_indicator_in_its_header(app, client, tenant):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz", phone="(415) 555-0134")
    with_rows(client, tenant, lead["id"])
    twin = create_lead(client, tenant, first_name="Rosa", last_name="Diaz", phone="(415) 555-0134")
    ids = {"lead_id": lead["id"], "twin_id": twin["id"], "conversation_id": unknown_sender(client, tenant)}
    visits = client.get(f"/api/leads/{lead['id']}/consultations", headers=tenant.headers()).get_json()
    ids["consultation_id"] = visits[0]["id"]
    ids |= _a_rule_and_a_sequence(client, tenant)
    rows = [{"first_name": "Ana", "last_name": "Lima", "phone": "(415) 555-0101"}]
    ids["import_id"] = client.post("/api/leads/import", json=rows, headers=tenant.headers()).get_json()["id"]
    problems, seen = [], 0
    for role in Role:
        with app.test_client() as console:
            log_in(console, tenant, role.value)
            for path, permission in PAGES.items():
                if permission not in ROLE_PERMISSIONS[role]:
                    continue
                answer = console.get(path.format(**ids))
                if answer.status_code != 200:
                    problems.append(f"{role} {path}: answered {answer.status_code}")
                    continue
                seen += 1
                html = answer.get_data(as_text=True)
                links = LINK.findall(html)
                if len(links) != 1 or "console.css" not in links[0]:
                    problems.append(f"{role} {path}: stylesheets {links}")
                header, rest = _header(html), html.split("</header>", 1)[1]
                if 'id="live-count"' not in header or 'id="live-status"' not in header:
                    problems.append(f"{role} {path}: the live indicator is not in the header")
                if 'id="live' in rest or wording.LIVE_TITLE in rest:
                    problems.append(f"{role} {path}: something of the live indicator outside the header")
    assert seen > len(Role) and problems == [], "\n".join(problems)


def test_the_stylesheet_names_colours_by_their_tokens_only():
    css = re.sub(r"/\*.*?\*/", "", STYLESHEET.read_text(), flags=re.S)
    rules = re.findall(r"([^{}]*)\{([^{}]*)\}", css)
    root = [body for selector, body in rules if selector.strip() == ":root"]
    assert len(root) == 1 and "--color-text" in root[0] and "--color-danger" in root[0]
    literal = [
        f"{selector.strip()} {{{body.strip()[:80]}}}"
        for selector, body in rules
        if selector.strip() != ":root" and LITERAL_COLOUR.search(body)
    ]
    assert literal == [], "literal colours outside :root:\n" + "\n".join(literal)
    assert not (STYLESHEET.parent / "workspace" / "workspace.css").exists()  # merged into this one


@pytest.mark.parametrize("path", ["/console/today", "/console/failures"])
def test_the_live_indicator_is_a_badge_in_the_header_above_the_heading_at_a_phones_width(
    tenant, live_server, page, path
):
    page.set_viewport_size(PHONE)
    log_in_browser(page, live_server, tenant, role="clinic_admin")
    page.goto(f"{live_server}{path}")
    indicator = page.locator("header #live > summary")
    expect(indicator).to_be_visible()
    box, heading = indicator.bounding_box(), page.locator("main h1").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert box["y"] + box["height"] <= heading["y"], (box, heading)  # never above the page's heading
    expect(page.locator("#live-count")).to_have_text("0")
    expect(page.locator("#live-status")).to_have_text(re.compile("|".join(wording.LIVE_STATUS.values())))
    expect(page.locator("#live-items")).to_be_hidden()  # the list under the badge, closed
    indicator.click()
    expect(page.locator("#live .live-panel")).to_contain_text(wording.LIVE_NOTHING)
    panel = page.locator("#live .live-panel").bounding_box()
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= PHONE["width"], panel
    assert not _wider_than_the_screen(page)
