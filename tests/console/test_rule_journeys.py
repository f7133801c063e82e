"""The rule builder in Debian's Chromium, as an admin builds a rule: with the keyboard, a condition
row's wrong value is named by its path beside the row as it is typed (the API's validation), the
draft is replayed over the last 30 days (the family who would have matched is listed), saved, and a
real worker fires it on the next lead captured. A coordinator is refused the builder."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.console.test_browser import log_in
from tests.console.test_every_page import _serious_violations
from tests.leadkit import create_lead
from tests.workers import wait_for

TITLE = "Call the Oakland family today"
FIELDS_BEFORE_CITY = 10  # lead.city's place in the rule language's field list (rules.LEAD_FIELDS)
OPERATORS_BEFORE_IN = 5  # `in` after equals, not_equals, contains, greater_than, less_than


def _task_titles(client, tenant, lead_id: int) -> list[str]:
    answer = client.get(f"/api/leads/{lead_id}/tasks", headers=tenant.headers("clinic_admin"))
    return [t["title"] for t in answer.get_json()]


def test_an_admin_builds_simulates_and_saves_a_rule_that_fires_on_the_next_lead(
    client, tenant, celery_worker, live_server, page
):
    earlier = create_lead(client, tenant, first_name="Ana", last_name="Ruiz", city="Oakland")
    log_in(page, live_server, tenant, role="clinic_admin")
    page.goto(f"{live_server}/console/rules")
    page.get_by_role("link", name="New rule").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/rules/new$"))
    # The builder's rows are drawn by its script: Tab only once it has run (a busy host loads it late).
    page.wait_for_load_state("load")
    keys = page.keyboard
    page.locator("#name").focus()
    keys.type("Oakland families get a call")
    # The trigger stays lead.created; past it, Active (ticked) and stop processing, to "Add condition".
    for _ in range(5):
        keys.press("Tab")
    expect(page.get_by_role("button", name="Add condition", exact=True)).to_be_focused()
    keys.press("Enter")
    field = page.get_by_label("Condition 1: field")
    expect(field).to_be_focused()
    for _ in range(FIELDS_BEFORE_CITY):
        keys.press("ArrowDown")
    expect(field).to_have_value("lead.city")
    keys.press("Tab")
    for _ in range(OPERATORS_BEFORE_IN):
        keys.press("ArrowDown")
    expect(page.get_by_label("Condition 1: operator")).to_have_value("in")
    keys.press("Tab")
    keys.type("Oakland")
    # `in` takes a list: the check names the value by its path, beside its row.
    error = page.locator('.condition-row[data-path="conditions.0"] .field-error')
    expect(error).to_have_text(re.compile(r"conditions\.0\.value: in takes a list of values"))
    expect(page.locator("#check-status")).to_have_text("1 problem to fix")
    keys.press("Shift+Tab")
    for _ in range(OPERATORS_BEFORE_IN):
        keys.press("ArrowUp")
    expect(page.get_by_label("Condition 1: operator")).to_have_value("equals")
    expect(error).to_have_text("")
    expect(page.locator("#check-status")).to_have_text("No problems: this rule can be saved.")
    details = page.get_by_label("Action 1: details (JSON: title, task_type, body...)")
    details.focus()
    keys.press("Control+a")
    keys.type(f'{{"title": "{TITLE}", "task_type": "CALL"}}')
    expect(page.locator("#check-status")).to_have_text("No problems: this rule can be saved.")
    assert _serious_violations(page) == []

    page.locator("#do-simulate").focus()
    keys.press("Enter")
    expect(page.locator("#simulation")).to_contain_text("1 of 1")
    expect(page.locator(f"#matched-leads li[data-lead-id='{earlier['id']}']")).to_be_visible()
    expect(page.get_by_label("Condition 1: value")).to_have_value("Oakland")  # the draft kept
    assert _task_titles(client, tenant, earlier["id"]).count(TITLE) == 0  # a replay makes nothing

    page.locator("#do-save").focus()
    keys.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/rules/\d+$"))
    expect(page.locator("#versions li[data-version='1']")).to_be_visible()

    following = create_lead(client, tenant, first_name="Leo", last_name="Park", city="Oakland")
    elsewhere = create_lead(client, tenant, first_name="Mia", last_name="Chen", city="Fresno")
    wait_for(lambda: TITLE in _task_titles(client, tenant, following["id"]), timeout=30)
    wait_for(lambda: _task_titles(client, tenant, elsewhere["id"]), timeout=30)  # its own rules ran
    assert TITLE not in _task_titles(client, tenant, elsewhere["id"])
    page.goto(f"{live_server}/console/rules")
    expect(page.locator("#rules")).to_contain_text("Oakland families get a call")


def test_a_coordinator_is_refused_the_rules_and_sees_no_link(tenant, live_server, page):
    log_in(page, live_server, tenant, role="treatment_coordinator")
    expect(page.locator("header nav")).not_to_contain_text("Rules")
    answer = page.goto(f"{live_server}/console/rules/new")
    assert answer.status == 403


def test_groups_nest_to_the_languages_limit_and_a_nested_value_is_named_by_its_path(
    tenant, live_server, page
):
    log_in(page, live_server, tenant, role="clinic_admin")
    page.goto(f"{live_server}/console/rules/new")
    page.locator("#name").fill("New or contacted families")
    page.get_by_role("button", name="Add group", exact=True).focus()
    page.keyboard.press("Enter")  # conditions.0: any of one condition
    page.get_by_role("button", name="Add condition to group 1", exact=True).focus()
    page.keyboard.press("Enter")  # conditions.0.any.1
    operator = page.get_by_label("Condition 1.2: operator")
    operator.focus()
    for _ in range(OPERATORS_BEFORE_IN):
        page.keyboard.press("ArrowDown")
    page.get_by_label("Condition 1.2: value").focus()
    page.keyboard.type("NEW")
    error = page.locator('.condition-row[data-path="conditions.0.any.1"] .field-error')
    expect(error).to_have_text(re.compile(r"conditions\.0\.any\.1\.value: in takes a list of values"))
    page.get_by_label("Condition 1.2: value").fill('["NEW", "CONTACTED"]')
    expect(error).to_have_text("")
    # Groups in groups: three levels, as the rule language allows, and no deeper.
    page.get_by_role("button", name="Add group to group 1", exact=True).click()
    page.get_by_role("button", name="Add group to group 1.3", exact=True).click()
    expect(page.locator('fieldset.group[data-path="conditions.0.any.2.any.1"]')).to_be_visible()
    expect(page.get_by_role("button", name="Add group to group 1.3.2", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Add condition to group 1.3.2", exact=True)).to_be_visible()
    expect(page.locator("#check-status")).to_have_text("No problems: this rule can be saved.")
