"""The lead page's action bar, as a coordinator uses it in Chromium against a real server (issue 76
item 2): a call logged with its outcome and notes, the lead moved to the next stage, a task edited
from its row, then the lead marked lost (the reason asked for beside its field first), after which
the page offers nothing more to do."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.test_browser import log_in
from tests.console.test_lead_page import _api, _task
from tests.leadkit import create_lead


def test_a_coordinator_logs_a_call_moves_the_stage_edits_a_task_and_marks_the_lead_lost(
    client, tenant, live_server, page
):
    lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz", phone="(415) 555-0181")
    task = _task(client, tenant, lead["id"], "Call Rosa")
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/leads/{lead['id']}")
    expect(page.locator("h1")).to_have_text("Rosa Diaz New Lead · New: not reached yet")

    bar = page.locator("#actions")
    bar.get_by_role("button", name="Log a call").click()
    page.locator("#call-outcome").select_option(label="Voicemail")
    page.fill("#call-notes", "Left a message about Tuesday")
    bar.get_by_role("button", name="Log the call").click()
    expect(page.locator(".flash")).to_have_text("Call logged.")
    calls = [
        a for a in _api(client, tenant, f"/api/leads/{lead['id']}/activities") if a["type"] == "PHONE_CALL"
    ]
    assert [(c["outcome"], c["notes"]) for c in calls] == [("voicemail", "Left a message about Tuesday")]

    bar.get_by_role("button", name="Move stage").click()
    expect(bar.locator("form.move select[name=stage]")).to_have_value("contacted")  # the next one first
    bar.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator(".flash")).to_have_text("Stage changed.")
    expect(page.locator("h1")).to_contain_text("Contacted")

    page.get_by_role("button", name="Edit “Call Rosa”").click()
    page.fill(f"#edit-task-{task['id']}-title", "Call Rosa about braces")
    page.get_by_role("button", name="Save the task").click()
    expect(page.locator(".flash")).to_have_text("Task saved.")
    expect(page.locator(f"tr[data-task='{task['id']}']")).to_contain_text("Call Rosa about braces")

    bar.get_by_role("button", name="Mark lost").click()
    page.fill("#lost-notes", "Chose the clinic near her work")
    bar.get_by_role("button", name="Mark the lead lost").click()
    expect(page.locator("#err-reason")).to_have_text(
        "Choose why the lead was lost: a lead moves to Lost only with a reason."
    )
    expect(page.locator("#lost-notes")).to_have_value("Chose the clinic near her work")
    page.locator("#lost-reason").select_option(label="Chose competitor")
    bar.get_by_role("button", name="Mark the lead lost").click()
    expect(page.locator(".flash")).to_have_text("Lead marked lost.")
    expect(page.locator("#lead-closed")).to_contain_text("This lead is closed (lost)")
    expect(bar.locator("form")).to_have_count(0)
    assert _api(client, tenant, f"/api/leads/{lead['id']}")["lost_reason"] == "CHOSE_COMPETITOR"
