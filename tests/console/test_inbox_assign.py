"""Assigning a lead from its thread (issue 76 item 5): the family's card beside the thread offers
"Assign to" the people who may take leads (the lead page's own choices and assignment), for those
who may assign; the thread is shown again with a flash; a bad choice is said beside the field; the
front desk may not, and another clinic's lead is a 404."""

from __future__ import annotations

import re

from tests.console import test_inbox_desk
from tests.console.test_console_pages import csrf_of, log_in
from tests.console.test_inbox_desk import pane, two_families
from tests.leadkit import get_lead, set_user

console, providers = test_inbox_desk.console, test_inbox_desk.providers  # its fixtures


def test_a_coordinator_gives_the_lead_to_someone_from_the_familys_card(app, client, console, tenant):
    maria, _ = two_families(app, client, tenant)
    admin = tenant.users["clinic_admin"]
    set_user(app, admin.id, out_of_office=False)  # back in: she may take leads again
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get(f"/console/inbox/leads/{maria['id']}").get_data(as_text=True)
    card = pane(html, "aside", "family")
    choices = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', pane(card, "select", "assign-owner"))
    assert dict(choices) == {
        str(admin.id): admin.name,
        str(tenant.users["treatment_coordinator"].id): tenant.users["treatment_coordinator"].name,
    }  # the front desk takes no leads
    assert "Assign to" in card

    done = console.post(
        f"/console/inbox/leads/{maria['id']}/owner",
        data={"csrf_token": csrf_of(html), "owner": str(admin.id)},
    )
    assert done.status_code == 303 and done.headers["Location"].endswith(
        f"/console/inbox/leads/{maria['id']}"
    )
    assert get_lead(client, tenant, maria["id"]).get_json()["assigned_to_id"] == admin.id
    again = console.get(done.headers["Location"]).get_data(as_text=True)
    assert "Lead assigned." in again
    assert admin.name in pane(again, "dd", "card-owner").split("<form")[0]  # the card names her now


def test_someone_who_may_not_take_leads_is_refused_beside_the_field(app, client, console, tenant):
    maria, _ = two_families(app, client, tenant)
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get(f"/console/inbox/leads/{maria['id']}").get_data(as_text=True)
    desk = tenant.users["front_desk"].id
    refused = console.post(
        f"/console/inbox/leads/{maria['id']}/owner", data={"csrf_token": csrf_of(html), "owner": str(desk)}
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert 'id="err-owner"' in pane(page, "aside", "family")
    assert "Is Tuesday free?" in page  # the thread is still there
    owner = get_lead(client, tenant, maria["id"]).get_json()["assigned_to_id"]
    assert owner == tenant.users["treatment_coordinator"].id


def test_the_front_desk_and_another_clinic_may_not_assign(app, client, console, tenant, make_tenant):
    maria, _ = two_families(app, client, tenant)
    coordinator = tenant.users["treatment_coordinator"].id
    log_in(console, tenant, role="front_desk")
    html = console.get(f"/console/inbox/leads/{maria['id']}").get_data(as_text=True)
    assert "Assign to" not in html
    form = {"csrf_token": csrf_of(html), "owner": str(coordinator)}
    assert console.post(f"/console/inbox/leads/{maria['id']}/owner", data=form).status_code == 403

    other = make_tenant("Other Orthodontics")
    log_in(console, other, role="treatment_coordinator")
    token = csrf_of(console.get("/console/inbox").get_data(as_text=True))
    taken = {"csrf_token": token, "owner": str(other.users["treatment_coordinator"].id)}
    assert console.post(f"/console/inbox/leads/{maria['id']}/owner", data=taken).status_code == 404
    assert get_lead(client, tenant, maria["id"]).get_json()["assigned_to_id"] == coordinator
