"""The lead page's possible duplicates (issue 64 item 3): a coordinator merges one into the lead with
the keyboard after a confirmation naming the fields taken, or says it is not the same family and it
is never suggested again; the front desk, who may not change leads, sees neither button."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.console.test_browser import log_in
from tests.console.test_console_pages import csrf_of
from tests.console.test_console_pages import log_in as console_log_in
from tests.leadkit import create_lead, get_lead


def _pair(client, tenant) -> tuple[dict, dict]:
    """A lead without an email, and a second call from the same phone that gave one."""
    survivor = create_lead(client, tenant, phone="(415) 555-0161")
    twin = create_lead(client, tenant, first_name="Jan", phone="+1 415 555 0161", email="jan@example.com")
    assert twin["possible_duplicates"] == [{"lead_id": survivor["id"], "matched": ["phone"]}]
    return survivor, twin


def test_a_coordinator_merges_a_duplicate_from_the_lead_page_with_the_keyboard(
    client, tenant, live_server, page
):
    survivor, twin = _pair(client, tenant)
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/leads/{survivor['id']}")
    merge_link = page.get_by_role("link", name=f"Merge lead {twin['id']} into this lead")
    merge_link.focus()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text(f"Merge lead {twin['id']} into lead {survivor['id']}?")
    expect(page.locator("#merge-fields")).to_have_text("Email")
    merge_button = page.get_by_role("button", name=f"Merge lead {twin['id']} into lead {survivor['id']}")
    expect(merge_button).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_have_text(f"Lead {twin['id']} merged into this lead.")
    expect(page).to_have_url(re.compile(rf"/console/leads/{survivor['id']}#duplicates$"))
    assert get_lead(client, tenant, survivor["id"]).get_json()["email"] == "jan@example.com"
    merged = get_lead(client, tenant, twin["id"]).get_json()
    assert (merged["status"], merged["merged_into_id"]) == ("ARCHIVED", survivor["id"])
    page.goto(f"{live_server}/console/leads/{twin['id']}")
    expect(page.locator("#merged-into")).to_contain_text(f"lead {survivor['id']}")


def test_not_the_same_family_is_never_suggested_again_on_either_page(app, client, tenant):
    survivor, twin = _pair(client, tenant)
    with app.test_client() as console:
        console_log_in(console, tenant, "treatment_coordinator")
        html = console.get(f"/console/leads/{survivor['id']}").get_data(as_text=True)
        assert f"Lead {twin['id']} is not the same family" in html
        token = csrf_of(html)
        done = console.post(
            f"/console/leads/{survivor['id']}/duplicates/{twin['id']}/dismiss", data={"csrf_token": token}
        )
        assert done.status_code == 303
        for lead_id, other_id in ((survivor["id"], twin["id"]), (twin["id"], survivor["id"])):
            html = console.get(f"/console/leads/{lead_id}").get_data(as_text=True)
            assert 'id="duplicates"' not in html and f"Merge lead {other_id}" not in html


def test_a_refused_merge_says_why_and_who_may_not_merge_sees_no_button(app, client, tenant):
    survivor, twin = _pair(client, tenant)
    with app.test_client() as console:
        console_log_in(console, tenant, "treatment_coordinator")
        itself = console.get(f"/console/leads/{survivor['id']}/merge/{survivor['id']}")
        assert itself.status_code == 409 and "cannot be merged into itself" in itself.get_data(as_text=True)
    with app.test_client() as anonymous:
        resp = anonymous.get(f"/console/leads/{survivor['id']}/merge/{twin['id']}")
        assert resp.status_code == 302 and "/console/login" in resp.headers["Location"]
    with app.test_client() as desk:
        console_log_in(desk, tenant, "front_desk")
        html = desk.get(f"/console/leads/{survivor['id']}").get_data(as_text=True)
        assert "Merge lead" not in html and "not the same family" not in html
        refused = desk.post(
            f"/console/leads/{survivor['id']}/merge/{twin['id']}", data={"csrf_token": csrf_of(html)}
        )
        assert refused.status_code == 403
    assert get_lead(client, tenant, twin["id"]).get_json()["merged_into_id"] is None


def _children(*names: str) -> list[dict]:
    return [{"first_name": name, "relationship": "CHILD"} for name in names]


def test_merging_from_the_lead_page_brings_the_other_leads_children(app, client, tenant):
    survivor = create_lead(client, tenant, phone="(415) 555-0162", patients=_children("Ana", "Luis"))
    twin = create_lead(
        client, tenant, first_name="Jan", phone="+1 415 555 0162", patients=_children("Ben", "Diego")
    )
    with app.test_client() as console:
        console_log_in(console, tenant, "treatment_coordinator")
        html = console.get(f"/console/leads/{survivor['id']}/merge/{twin['id']}").get_data(as_text=True)
        done = console.post(
            f"/console/leads/{survivor['id']}/merge/{twin['id']}", data={"csrf_token": csrf_of(html)}
        )
        assert done.status_code == 303
        page = console.get(f"/console/leads/{survivor['id']}").get_data(as_text=True)
    assert "Diego" in page
    patients = get_lead(client, tenant, survivor["id"]).get_json()["patients"]
    assert [p["first_name"] for p in patients] == ["Ana", "Luis", "Diego"]
