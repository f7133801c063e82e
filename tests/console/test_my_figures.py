"""A coordinator's own figures (/console/reports/mine), through Flask's test client: the speed to
lead, follow-up and bookings of the leads assigned to the one who looks, never a colleague's; those
who do not work leads are refused; a bad date range names its field."""

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


def text_of(resp) -> str:
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))))


def assigned_lead(client, tenant, owner_role: str, **fields) -> dict:
    lead = create_lead(client, tenant, role="clinic_admin", **fields)
    owner = tenant.users[owner_role].id
    resp = client.post(f"/api/leads/{lead['id']}/assign", json={"user_id": owner}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return lead


def test_a_coordinator_sees_the_figures_of_their_own_leads_only(client, console, tenant):
    for name in ("Ana", "Ben"):
        assigned_lead(client, tenant, "treatment_coordinator", first_name=name)
    assigned_lead(client, tenant, "clinic_admin", first_name="Cleo")
    log_in(console, tenant, "treatment_coordinator")
    mine = console.get("/console/reports/mine")
    assert mine.status_code == 200
    shown = text_of(mine)
    assert "2 new leads assigned to you" in shown, shown
    log_in(console, tenant, "clinic_admin")
    assert "1 new lead assigned to you" in text_of(console.get("/console/reports/mine"))


def test_the_menu_offers_my_figures_to_those_who_work_leads(console, tenant):
    log_in(console, tenant, "treatment_coordinator")
    assert 'href="/console/reports/mine"' in console.get("/console/today").get_data(as_text=True)
    log_in(console, tenant, "front_desk")
    assert "/console/reports/mine" not in console.get("/console/leads/new").get_data(as_text=True)


@pytest.mark.parametrize("role", ["front_desk", "doctor"])
def test_those_who_do_not_work_leads_are_refused(console, tenant, role):
    log_in(console, tenant, role)
    assert console.get("/console/reports/mine").status_code == 403


def test_a_reversed_range_names_the_field(console, tenant):
    log_in(console, tenant, "treatment_coordinator")
    resp = console.get("/console/reports/mine", query_string={"from": "2026-02-01", "to": "2026-01-01"})
    assert resp.status_code == 422 and "from" in text_of(resp)
    bad = console.get("/console/reports/mine", query_string={"to": "yesterday"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in text_of(bad)
