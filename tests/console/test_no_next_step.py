"""Leads left without a next step (issue 74 item 1) on the pipeline board and on Today, through Flask's
test client: the card says "No next step" and why, Today lists them (a coordinator's own, the clinic's
for an admin), each by the orphan sweep's definition (automation/orphans.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from app.platform import clock
from tests.automation.kit import run_events
from tests.automation.test_orphans import sweep
from tests.console.test_console_pages import log_in
from tests.leadkit import create_lead, set_user


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


@pytest.fixture
def stranded(app, client, tenant) -> dict[str, int]:
    """Leads by first name: Nobody (no owner: the sweep found nobody to give it) and Stop (do not
    contact), both told by the sweep; Mine (the coordinator's, nothing planned: the sweep has not seen
    it yet); Busy (the coordinator's, with an open task: a next step)."""
    rules = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    speed = next(r for r in rules if r["default_key"] == "speed_to_lead")
    off = client.patch(
        f"/api/follow-up-rules/{speed['id']}", json={"active": False}, headers=tenant.headers()
    )
    assert off.status_code == 200  # a new lead has nothing planned
    away = ("treatment_coordinator", "clinic_admin")
    for role in away:  # nobody may be given a lead
        set_user(app, tenant.users[role].id, out_of_office=True)
    nobody = create_lead(client, tenant, first_name="Nobody", last_name="Owner")
    stop = create_lead(client, tenant, first_name="Stop", last_name="Please", phone="+14155550101")
    dnc = client.put(f"/api/leads/{stop['id']}", json={"do_not_contact": True}, headers=tenant.headers())
    assert dnc.status_code == 200, dnc.get_json()
    for lead in (nobody, stop):
        run_events(app, lead["id"], clock.now())
    assert sweep(app, clock.now() + timedelta(hours=25))["follow_ups"] == 0
    set_user(app, tenant.users["treatment_coordinator"].id, out_of_office=False)
    mine = create_lead(client, tenant, first_name="Mine", last_name="Alone", phone="+14155550102")
    busy = create_lead(client, tenant, first_name="Busy", last_name="Bee", phone="+14155550103")
    coordinator = tenant.users["treatment_coordinator"].id
    assert mine["assigned_to_id"] == busy["assigned_to_id"] == coordinator
    task = client.post(
        f"/api/leads/{busy['id']}/tasks", json={"title": "Call back", "type": "CALL", "due_in_minutes": 60},
        headers=tenant.headers("treatment_coordinator"),
    )  # fmt: skip
    assert task.status_code == 201, task.get_json()
    for lead in (mine, busy):
        run_events(app, lead["id"], clock.now())
    return {lead["first_name"]: lead["id"] for lead in (nobody, stop, mine, busy)}


def said(html: str) -> str:
    """The text a person reads (tags dropped, spaces squeezed)."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def card(html: str, lead_id: int) -> str:
    ends = r'</li>\s*(?=<li class="card"|<li class="empty"|</ol>)'
    found = re.search(rf'<li class="card" id="lead-{lead_id}".*?{ends}', html, re.S)
    assert found, f"no card of lead {lead_id}"
    return said(found.group(0))


def test_a_board_card_says_the_lead_has_no_next_step_and_why(console, tenant, stranded):
    log_in(console, tenant, role="clinic_admin")
    resp = console.get("/console/board")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "No next step : no owner" in card(html, stranded["Nobody"])
    assert "No next step : can't be reached: opted out everywhere" in card(html, stranded["Stop"])
    assert "No next step : nothing planned yet" in card(html, stranded["Mine"])
    assert "No next step" not in card(html, stranded["Busy"])


def no_next_step_section(html: str) -> str:
    found = re.search(r'<section id="no-next-step".*?</section>', html, re.S)
    assert found, "no section of leads with no next step"
    return said(found.group(0))


def test_today_lists_an_admin_the_clinics_leads_with_no_next_step(console, tenant, stranded):
    log_in(console, tenant, role="clinic_admin")
    html = console.get("/console/today").get_data(as_text=True)
    section = no_next_step_section(html)
    assert "Leads with no next step" in section
    assert "Nobody Owner : no owner" in section
    assert "Stop Please : can't be reached: opted out everywhere" in section
    assert "Mine Alone : nothing planned yet" in section
    assert "Busy Bee" not in section
    assert f'href="/console/leads/{stranded["Nobody"]}"' in html


def test_today_lists_a_coordinator_only_their_own_and_says_when_there_are_none(
    app, console, tenant, stranded
):
    log_in(console, tenant, role="treatment_coordinator")
    live = console.get("/console/today/live").get_data(as_text=True)
    section = no_next_step_section(live)
    assert "Mine Alone : nothing planned yet" in section
    assert "Nobody" not in section and "Stop" not in section and "Busy" not in section
    with app.test_client() as desk:  # owns no lead
        log_in(desk, tenant, role="front_desk")
        section = no_next_step_section(desk.get("/console/today").get_data(as_text=True))
    assert "Every open lead of yours has a next step." in section
