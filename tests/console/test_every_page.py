"""Every console page, in Debian's Chromium, as each role that may open it: at a phone's width and a
desk's, nothing serious for axe-core (the engine axe-playwright-python ships), no page wider than the
screen, and every link, button and field reached by the keyboard alone (Tab), each showing its focus.
The login page is tried the same way before anyone has logged in.

`make screenshots` runs this file with FOLLOWUP_SCREENSHOTS naming a folder: each page is then also
photographed at both widths, as the first of SCREENSHOT_ROLES that may open it (the docs' pictures)."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from app.platform import clock
from app.platform.roles import ROLE_PERMISSIONS, Permission, Role
from tests.browser import serious_violations
from tests.console.test_browser import log_in
from tests.console.test_inbox_pages import unknown_sender
from tests.console.test_lead_page import with_rows
from tests.intake.test_twilio import twilio  # noqa: F401 - the fixture: Twilio's signing token
from tests.leadkit import create_lead

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 800}
PAGES = {
    "/console/failures": Permission.CONFIGURE,
    "/console/health": Permission.CONFIGURE,
    "/console/bulk-jobs": Permission.READ,
    "/console/analytics": Permission.ANALYTICS,
    "/console/leads/{lead_id}": Permission.READ,
    "/console/leads/{lead_id}/merge/{twin_id}": Permission.UPDATE,  # a duplicate's merge, confirmed
    "/console/today": Permission.READ,
    # The schedule on the day with_rows books on (its Move and Cancel links), its week, the move form,
    # the cancel's confirmation, and the booking for a family chosen on that day.
    "/console/schedule?day=2030-01-07": Permission.READ,
    "/console/schedule?day=2030-01-07&view=week": Permission.READ,
    "/console/schedule/consultations/{consultation_id}/move": Permission.CREATE,
    "/console/schedule/consultations/{consultation_id}/cancel": Permission.CREATE,
    "/console/schedule/book?day=2030-01-07&lead={lead_id}": Permission.CREATE,
    "/console/leads/new": Permission.CREATE,
    "/console/board": Permission.READ,
    "/console/board/leads/{lead_id}/stage": Permission.UPDATE,  # a card's move form without the script
    "/console/team": Permission.ASSIGN,
    "/console/reports": Permission.ANALYTICS,
    "/console/reports/mine": Permission.UPDATE,  # a coordinator's own figures
    "/console/inbox": Permission.READ,
    "/console/inbox/leads/{lead_id}": Permission.READ,
    "/console/inbox/unknown/{conversation_id}": Permission.READ,
    "/console/rules": Permission.CONFIGURE,
    "/console/rules/new": Permission.CONFIGURE,
    "/console/rules/{rule_id}": Permission.CONFIGURE,
    "/console/rules/{rule_id}/edit": Permission.CONFIGURE,
    "/console/settings/cadence": Permission.CONFIGURE,  # the follow-up cadence
    "/console/sequences": Permission.CONFIGURE,
    "/console/sequences/{sequence_id}": Permission.CONFIGURE,
    "/console/import": Permission.CREATE,
    "/console/import/{import_id}": Permission.CREATE,  # an import's progress and refused rows
    "/console/settings": Permission.CONFIGURE,
    "/console/settings/profile": Permission.CONFIGURE,
    "/console/settings/team": Permission.CONFIGURE,
    "/console/settings/booking": Permission.CONFIGURE,
    "/console/settings/sources": Permission.CONFIGURE,
    "/console/settings/templates": Permission.CONFIGURE,
    "/console/settings/templates/{template_id}": Permission.CONFIGURE,  # a template's edit page
    "/console/settings/templates/{template_id}/delete": Permission.CONFIGURE,  # "Delete it?" first
    "/console/settings/channels": Permission.CONFIGURE,
    "/console/settings/forms": Permission.CONFIGURE,
    "/console/settings/webhooks": Permission.CONFIGURE,
}
SCREENSHOT_ROLES = (Role.TREATMENT_COORDINATOR, Role.CLINIC_ADMIN, Role.FRONT_DESK, Role.DOCTOR)
FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea"
TAB_BATCH = 10  # Tabs between two looks at what is still unreached


def _wider_than_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")


def _unreached_by_tab(page) -> list[str]:
    """Tab from the top of the page until focus comes round; the visible controls never focused, and
    those whose focus draws no outline."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate(
        """sel => { window.__reached = new Set(); window.__unmarked = [];
        document.addEventListener('focusin', e => { window.__reached.add(e.target);
          const s = getComputedStyle(e.target);
          if (s.outlineStyle === 'none' && s.boxShadow === 'none')
            window.__unmarked.push(e.target.outerHTML.slice(0, 80)); }); }""",
        FOCUSABLE,
    )
    controls = page.evaluate(f"document.querySelectorAll('{FOCUSABLE}').length")
    unreached = """sel => [...document.querySelectorAll(sel)]
      .filter(el => el.offsetParent !== null && !el.disabled && !window.__reached.has(el))
      .map(el => el.outerHTML.slice(0, 80))"""
    # One Tab a control at least; a date field takes a Tab for each of its parts, so up to three a
    # control. Looked at after each batch: the walk ends once every visible control was reached.
    pressed, budget = 0, 3 * controls + 10
    while pressed < budget:
        batch = controls + 1 if pressed == 0 else TAB_BATCH
        for _ in range(min(batch, budget - pressed)):
            page.keyboard.press("Tab")
        pressed += batch
        if not page.evaluate(unreached, FOCUSABLE):
            break
    return page.evaluate(unreached, FOCUSABLE) + page.evaluate("window.__unmarked")


def _screenshot_folder(path: str, role: Role) -> Path | None:
    """Where this page's pictures go when `make screenshots` asks for them and this role takes them."""
    folder = os.environ.get("FOLLOWUP_SCREENSHOTS")
    if not folder:
        return None
    taker = next(r for r in SCREENSHOT_ROLES if PAGES[path] in ROLE_PERMISSIONS[r])
    return Path(folder) if taker == role else None


def _check(page, url: str, label: str, screenshots: Path | None = None) -> list[str]:
    problems = []
    for name, size in (("phone", PHONE), ("desk", DESK)):
        page.set_viewport_size(size)
        opened = page.goto(url)  # None: the same page, to another #fragment
        if opened is not None and not opened.ok:  # a missing page would be an accessible error page
            problems.append(f"{label} at {name}: answered {opened.status}")
        if screenshots:
            slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\{(\w+)_id\}", r"\1", label).lower()).strip("-")
            page.screenshot(path=screenshots / f"{slug}-{name}.png", full_page=True)
        problems += [f"{label} at {name}: axe {v}" for v in serious_violations(page)]
        if _wider_than_the_screen(page):
            problems.append(f"{label} at {name}: wider than the screen")
        problems += [f"{label} at {name}: keyboard misses {el}" for el in _unreached_by_tab(page)]
    return problems


def _a_rule_and_a_sequence(client, tenant) -> dict:
    """A rule with a group and two versions, a sequence of two steps, an email template and a webhook,
    for their pages."""
    admin = tenant.headers("clinic_admin")
    rule = {
        "name": "Oakland families",
        "trigger": "lead.created",
        "conditions": [{"any": [{"field": "lead.city", "operator": "equals", "value": "Oakland"}]}],
        "actions": [{"type": "create_task", "title": "Call them", "delay": {"amount": 1, "unit": "hours"}}],
    }
    made = client.post("/api/follow-up-rules", json=rule, headers=admin)
    assert made.status_code == 201, made.get_json()
    rule_id = made.get_json()["id"]
    etag = client.get(f"/api/follow-up-rules/{rule_id}", headers=admin).headers["ETag"]
    edited = client.patch(
        f"/api/follow-up-rules/{rule_id}",
        json={"name": "Oakland families, first call"},
        headers={**admin, "If-Match": etag},
    )
    assert edited.status_code == 200, edited.get_json()
    steps = [
        {"delay": {"amount": 0, "unit": "minutes"}, "channel": "sms", "body": "Hi {{ first_name }}"},
        {"delay": {"amount": 2, "unit": "days"}, "channel": "email", "subject": "Hello", "body": "Hi"},
    ]
    sequence = client.post("/api/sequences", json={"name": "Nurture", "steps": steps}, headers=admin)
    assert sequence.status_code == 201, sequence.get_json()
    template = {"name": "Welcome", "channel": "email", "subject": "Hello", "body": "Hi {{ first_name }}"}
    template = client.post("/api/message-templates", json=template, headers=admin)
    assert template.status_code == 201, template.get_json()
    hook = {"url": "http://127.0.0.1:9/hook", "event_types": ["lead.created"]}  # the webhooks page's list
    assert client.post("/api/webhooks", json=hook, headers=admin).status_code == 201
    return {
        "rule_id": rule_id,
        "sequence_id": sequence.get_json()["id"],
        "template_id": template.get_json()["id"],
    }


def _a_full_day(client, tenant, lead_id: int, role: str) -> None:
    """Today with every part filled for `role`: a task of theirs coming up after today, a consultation
    of the clinic's today and, for a role that takes calls, the call they hold (with its Release)."""
    booked = client.post(
        f"/api/leads/{lead_id}/consultations",
        json={"starts_at": clock.now().isoformat(), "provider_name": "Dr. Rivera"},
        headers=tenant.headers("clinic_admin"),
    )
    assert booked.status_code == 201, booked.get_json()
    if Permission.UPDATE in ROLE_PERMISSIONS[Role(role)]:  # the roles that work tasks and take calls
        soon = (clock.now() + timedelta(days=2)).isoformat()
        body = {"title": "Check in", "type": "CALL", "due_at": soon, "assigned_to_id": tenant.users[role].id}
        answer = client.post(f"/api/leads/{lead_id}/tasks", json=body, headers=tenant.headers("clinic_admin"))
        assert answer.status_code == 201, answer.get_json()
        taken = client.post("/api/me/next-task", headers=tenant.headers(role))
        assert taken.status_code == 200, taken.get_json()


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/console/login", "login"),
        ("/console/set-password#token=abc", "set password"),
        ("/console/forgot-password", "forgot password"),
    ],
)
def test_the_pages_before_login_are_usable_by_keyboard_at_a_phones_width(
    tenant, live_server, page, path, label
):
    folder = os.environ.get("FOLLOWUP_SCREENSHOTS")
    problems = _check(page, f"{live_server}{path}", label, Path(folder) if folder else None)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("role", [role.value for role in Role])
@pytest.mark.usefixtures("twilio")
# Some forty pages, each at two widths with axe and a keyboard walk: two to four minutes for an
# admin on a busy two-core host, where the suite's five-minute ceiling is too near.
@pytest.mark.timeout(900)
def test_every_page_a_role_may_open_is_accessible_fits_a_phone_and_works_by_keyboard(
    client, tenant, live_server, page, role
):
    family = [
        {"first_name": "Lucia", "age": 12, "relationship": "CHILD"},
        {"first_name": "Mateo", "age": 9, "relationship": "CHILD"},
    ]  # the lead page's patients with one to remove, the board's card "for Lucia (12) and Mateo (9)"
    lead = create_lead(
        client, tenant, first_name="Rosa", last_name="Diaz", phone="(415) 555-0134", patients=family
    )
    with_rows(client, tenant, lead["id"])  # the lead page with a task, a consultation, a message
    _a_full_day(client, tenant, lead["id"], role)  # Today's upcoming task, consultation and held call
    # ... and a possible duplicate, with its merge and dismiss buttons.
    twin = create_lead(
        client, tenant, first_name="Rosa", last_name="Diaz", phone="(415) 555-0134", email="r@example.com"
    )
    unknown = unknown_sender(client, tenant)  # the inbox's unknown sender's page
    ids = {"lead_id": lead["id"], "twin_id": twin["id"], "conversation_id": unknown}
    visits = client.get(f"/api/leads/{lead['id']}/consultations", headers=tenant.headers()).get_json()
    ids["consultation_id"] = visits[0]["id"]
    ids |= _a_rule_and_a_sequence(client, tenant)
    rows = [{"first_name": "Ana", "last_name": "Lima", "phone": "(415) 555-0101"}]
    ids["import_id"] = client.post("/api/leads/import", json=rows, headers=tenant.headers()).get_json()["id"]
    log_in(page, live_server, tenant, role=role)
    allowed = ROLE_PERMISSIONS[Role(role)]
    opened, problems = [], []
    for path, permission in PAGES.items():
        if permission not in allowed:
            continue
        opened.append(path)
        url = live_server + path.format(**ids)
        problems += _check(page, url, path, _screenshot_folder(path, Role(role)))
    assert opened, f"{role} may open no page"
    assert problems == [], "\n".join(problems)
