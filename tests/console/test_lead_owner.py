"""The lead page's owner (issue 76 item 2): who works the lead, and giving it to someone from the
page, as POST /api/leads/:id/assign does; through Flask's test client."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from tests.console.test_console_pages import csrf_of, log_in
from tests.leadkit import create_lead, get_lead


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def owner_section(html: str) -> str:
    found = re.search(r'<section id="owner".*?</section>', html, re.S).group(0)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", found)))


def test_a_coordinator_gives_the_lead_to_a_colleague_from_its_page(client, console, tenant):
    lead = create_lead(client, tenant, first_name="Rosa", phone="(415) 555-0131")
    admin = tenant.users["clinic_admin"]
    log_in(console, tenant, "treatment_coordinator")
    page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert "Give the lead to" in owner_section(page)
    given = console.post(
        f"/console/leads/{lead['id']}/owner", data={"csrf_token": csrf_of(page), "owner": str(admin.id)}
    )
    assert given.status_code == 303
    assert get_lead(client, tenant, lead["id"]).get_json()["assigned_to_id"] == admin.id
    shown = owner_section(console.get(f"/console/leads/{lead['id']}").get_data(as_text=True))
    assert shown.strip().startswith(f"Owner {admin.name} "), shown


def test_only_those_who_may_take_leads_are_offered_and_others_are_refused(client, console, tenant):
    lead = create_lead(client, tenant, first_name="Ana", phone="(415) 555-0132")
    before = get_lead(client, tenant, lead["id"]).get_json()["assigned_to_id"]
    log_in(console, tenant, "treatment_coordinator")
    page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    offered = owner_section(page)
    assert tenant.users["front_desk"].name not in offered and tenant.users["doctor"].name not in offered
    refused = console.post(
        f"/console/leads/{lead['id']}/owner",
        data={"csrf_token": csrf_of(page), "owner": str(tenant.users["front_desk"].id)},
    )
    assert refused.status_code == 422
    assert "leads go to coordinators or admins" in owner_section(refused.get_data(as_text=True))
    assert get_lead(client, tenant, lead["id"]).get_json()["assigned_to_id"] == before


def test_the_front_desk_sees_the_owner_but_cannot_give_the_lead_away(client, console, tenant):
    lead = create_lead(client, tenant, first_name="Cleo", phone="(415) 555-0133")
    log_in(console, tenant, "front_desk")
    page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert "Give the lead to" not in owner_section(page)
    posted = console.post(
        f"/console/leads/{lead['id']}/owner",
        data={"csrf_token": csrf_of(page), "owner": str(tenant.users["clinic_admin"].id)},
    )
    assert posted.status_code == 403


def test_an_unowned_lead_says_so_and_offers_no_one_preselected(client, console, db, tenant):
    from app.domains.leads.models import Lead

    lead = create_lead(client, tenant, first_name="Dee", phone="(415) 555-0134")
    with db.unit_of_work() as session:
        session.get(Lead, lead["id"]).assigned_to_id = None
    log_in(console, tenant, "treatment_coordinator")
    page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert "Nobody yet: give the lead to someone" in owner_section(page)
    assert '<option value="">' in re.search(r'<section id="owner".*?</section>', page, re.S).group(0)
