"""The rule builder in Debian's Chromium (issue 77's journey): an admin makes a working rule from plain
options without typing JSON. Nothing is said to be wrong before anything is typed; a condition is
picked from lists, the task's form filled in; the draft is tried on a family found by name (the
answer in sentences) and saved; a real worker then fires it on the next lead captured. A coordinator
is refused the builder; groups nest to the language's limit, a wrong value said beside its row."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser import serious_violations
from tests.console.test_browser import log_in
from tests.leadkit import create_lead
from tests.workers import wait_for

TITLE = "Call the Oakland family today"


def _task_titles(client, tenant, lead_id: int) -> list[str]:
    answer = client.get(f"/api/leads/{lead_id}/tasks", headers=tenant.headers("clinic_admin"))
    return [t["title"] for t in answer.get_json()]


def test_the_rule_builder_makes_a_working_rule_from_plain_options_without_typing_json(
    client, tenant, celery_worker, live_server, page
):
    create_lead(client, tenant, first_name="Ana", last_name="Ruiz", city="Oakland")
    log_in(page, live_server, tenant, role="clinic_admin")
    page.goto(f"{live_server}/console/rules")
    page.get_by_role("link", name="New rule").click()
    page.wait_for_load_state("load")  # the builder's script, which swaps rows in place
    expect(page.locator("#check-status")).to_have_text("")  # nothing wrong before anything is typed
    expect(page.locator(".field-error:not(:empty)")).to_have_count(0)

    page.get_by_label("Name", exact=True).fill("Oakland families get a call")
    page.get_by_role("button", name="Add condition", exact=True).click()
    field = page.get_by_label("Condition 1: what to check")
    expect(field).to_be_focused()  # the new row, drawn in place
    field.select_option(label="City")
    expect(page.get_by_label("Condition 1: how")).to_have_value("equals")
    page.get_by_label("Condition 1: value").fill("Oakland")
    page.get_by_label("Task title").fill(TITLE)
    page.get_by_label("Task priority").select_option(label="High")
    expect(page.locator("#check-status")).to_have_text("No problems: this rule can be saved.")
    expect(page.locator("#rule-in-words")).to_have_text(
        f"When a new lead comes in, if City is “Oakland”: create a task “{TITLE}” (call, priority high) "
        "for the lead's owner, due at once."
    )
    assert (
        page.locator("textarea:visible, input:visible").evaluate_all(
            "els => els.filter(e => /^\\s*[\\[{]/.test(e.value)).length"
        )
        == 0
    )  # no field holds JSON
    assert serious_violations(page) == []

    page.get_by_label("Try this rule on a lead: their name").fill("Ruiz")
    page.get_by_label("Ana Ruiz").check()
    page.get_by_role("button", name="Try it on the lead").click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("Ana Ruiz matches this rule")
    expect(result).to_contain_text("City is “Oakland”: it is “Oakland”, so this holds.")
    expect(page.get_by_label("Condition 1: value")).to_have_value("Oakland")  # the draft kept

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(r"/console/rules/\d+$"))
    expect(page.locator("#rule-in-words")).to_contain_text(f"if City is “Oakland”: create a task “{TITLE}”")

    following = create_lead(client, tenant, first_name="Leo", last_name="Park", city="Oakland")
    elsewhere = create_lead(client, tenant, first_name="Mia", last_name="Chen", city="Fresno")
    wait_for(lambda: TITLE in _task_titles(client, tenant, following["id"]), timeout=30)
    wait_for(lambda: _task_titles(client, tenant, elsewhere["id"]), timeout=30)  # its own rules ran
    assert TITLE not in _task_titles(client, tenant, elsewhere["id"])


def test_a_coordinator_is_refused_the_rules_and_sees_no_link(tenant, live_server, page):
    log_in(page, live_server, tenant, role="treatment_coordinator")
    expect(page.locator("header nav")).not_to_contain_text("Rules")
    answer = page.goto(f"{live_server}/console/rules/new")
    assert answer.status == 403


def test_groups_nest_to_the_languages_limit_and_a_wrong_value_is_said_beside_its_row(
    tenant, live_server, page
):
    log_in(page, live_server, tenant, role="clinic_admin")
    page.goto(f"{live_server}/console/rules/new")
    page.wait_for_load_state("load")
    page.get_by_label("Name", exact=True).fill("Families in the bay")
    page.get_by_role("button", name="Add group", exact=True).click()  # group 1: any of one condition
    page.get_by_label("Condition 1.1: what to check").select_option(label="City")
    page.get_by_label("Condition 1.1: value").fill("Oakland")
    page.get_by_role("button", name="Add condition to group 1", exact=True).click()
    page.get_by_label("Condition 1.2: what to check").select_option(label="City")
    page.get_by_label("Condition 1.2: how").select_option(label="is one of")
    value = page.get_by_label("Condition 1.2: value")
    value.fill(" , ")
    error = page.locator('[data-error-for="conditions.0.any.1.value"]')
    expect(error).to_have_text("Choose or type at least one value.")
    expect(page.locator("#check-status")).to_have_text("1 problem to fix")
    value.fill("Berkeley, Alameda")
    expect(error).to_have_text("")
    # Groups in groups: three levels, as the rule language allows, and no deeper.
    page.get_by_role("button", name="Add group to group 1", exact=True).click()
    page.get_by_role("button", name="Add group to group 1.3", exact=True).click()
    expect(page.locator('fieldset.group[data-path="conditions.0.any.2.any.1"]')).to_be_visible()
    expect(page.get_by_role("button", name="Add group to group 1.3.2", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Add condition to group 1.3.2", exact=True)).to_be_visible()
