"""The rules and sequences pages through Flask's test client: who may open them, the builder's check
naming a wrong part by its path (the API's own validation), trying a draft on a lead and replaying it
before it is saved (nothing written), saving a new version, and the sequence's steps in order. The
browser journey is in test_rule_journeys.py."""

from __future__ import annotations

import json

import pytest

from tests.console.test_console_pages import csrf_of, log_in
from tests.leadkit import create_lead

CITY_RULE = {
    "conditions": [{"field": "lead.city", "operator": "equals", "value": "Oakland"}],
    "actions": [{"type": "create_task", "title": "Call the Oakland family", "task_type": "CALL"}],
}
PAGES = ("/console/rules", "/console/rules/new", "/console/sequences")


@pytest.fixture
def other_tenant(make_tenant):
    return make_tenant("Another Practice")


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _form(console, path: str, do: str, **fields) -> dict:
    token = csrf_of(console.get(path).get_data(as_text=True))
    data = {
        "name": "Oakland callers",
        "trigger": "lead.created",
        "active": "on",
        "conditions": json.dumps(CITY_RULE["conditions"]),
        "actions": json.dumps(CITY_RULE["actions"]),
        "csrf_token": token,
        "do": do,
    }
    return {**data, **fields}


def _rules(client, tenant) -> list[dict]:
    return client.get("/api/follow-up-rules", headers=tenant.headers("clinic_admin")).get_json()


def test_an_anonymous_visitor_is_sent_to_log_in(console):
    for path in PAGES:
        resp = console.get(path)
        assert resp.status_code == 302 and "/console/login" in resp.headers["Location"], path


@pytest.mark.parametrize("role", ["treatment_coordinator", "front_desk"])
def test_a_role_that_may_not_configure_is_refused(console, tenant, role):
    log_in(console, tenant, role=role)
    for path in PAGES:
        assert console.get(path).status_code == 403, path
    assert 'href="/console/rules"' not in console.get("/console/today").get_data(as_text=True)


def test_the_check_names_a_wrong_value_by_its_path(console, tenant):
    log_in(console, tenant, role="clinic_admin")
    nested = [
        {"any": [CITY_RULE["conditions"][0], {"field": "lead.status", "operator": "in", "value": "NEW"}]}
    ]
    data = _form(console, "/console/rules/new", "check", conditions=json.dumps(nested))
    resp = console.post("/console/rules/check", data=data, headers={"X-CSRFToken": data["csrf_token"]})
    assert resp.status_code == 200
    assert resp.get_json()["errors"] == {"conditions.0.any.1.value": ["in takes a list of values"]}
    page = console.post("/console/rules/new", data=data)  # JavaScript off: the same, on the page
    assert page.status_code == 422
    assert "conditions.0.any.1.value" in page.get_data(as_text=True)


def test_an_unknown_field_and_a_missing_name_are_named(console, tenant):
    log_in(console, tenant, role="clinic_admin")
    wrong = [{"field": "lead.shoe_size", "operator": "equals", "value": 9}]
    data = _form(console, "/console/rules/new", "check", name="", conditions=json.dumps(wrong))
    errors = console.post("/console/rules/check", data=data).get_json()["errors"]
    assert sorted(errors) == ["conditions.0.field", "name"]  # both at once, as the admin builds
    data = _form(console, "/console/rules/new", "check", conditions=json.dumps(wrong))
    errors = console.post("/console/rules/check", data=data).get_json()["errors"]
    assert list(errors) == ["conditions.0.field"] and "lead.shoe_size" in errors["conditions.0.field"][0]
    data = _form(console, "/console/rules/new", "check", conditions="[{")
    assert list(console.post("/console/rules/check", data=data).get_json()["errors"]) == ["conditions"]


def test_a_draft_is_tried_on_a_lead_and_replayed_without_being_saved(console, client, tenant):
    oakland = create_lead(client, tenant, first_name="Ana", last_name="Ruiz", city="Oakland")
    elsewhere = create_lead(client, tenant, first_name="Bo", last_name="Li", city="Fresno")
    before = _rules(client, tenant)
    log_in(console, tenant, role="clinic_admin")
    html = console.post(
        "/console/rules/new", data=_form(console, "/console/rules/new", "test", lead_id=str(oakland["id"]))
    ).get_data(as_text=True)
    assert "it matches" in html and "Create task" in html
    html = console.post(
        "/console/rules/new", data=_form(console, "/console/rules/new", "test", lead_id=str(elsewhere["id"]))
    ).get_data(as_text=True)
    assert "it does not match" in html and '"Fresno"' in html
    html = console.post("/console/rules/new", data=_form(console, "/console/rules/new", "simulate")).get_data(
        as_text=True
    )
    assert f'data-lead-id="{oakland["id"]}"' in html and f'data-lead-id="{elsewhere["id"]}"' not in html
    assert 'saw <code>"Oakland"</code>: holds' in html  # why it would have matched
    assert _rules(client, tenant) == before  # nothing saved


def test_another_clinics_lead_is_not_found_for_a_test(console, client, tenant, other_tenant):
    theirs = create_lead(client, other_tenant, first_name="Zed", last_name="Other")
    log_in(console, tenant, role="clinic_admin")
    resp = console.post(
        "/console/rules/new", data=_form(console, "/console/rules/new", "test", lead_id=str(theirs["id"]))
    )
    assert resp.status_code == 422 and f"no lead {theirs['id']} in this clinic" in resp.get_data(as_text=True)


def test_save_makes_the_rule_and_an_edit_a_new_version_listed_on_its_page(console, client, tenant):
    log_in(console, tenant, role="clinic_admin")
    resp = console.post("/console/rules/new", data=_form(console, "/console/rules/new", "save"))
    assert resp.status_code == 303
    rule = next(r for r in _rules(client, tenant) if r["name"] == "Oakland callers")
    assert rule["conditions"] == CITY_RULE["conditions"] and rule["version"] == 1
    edit = f"/console/rules/{rule['id']}/edit"
    assert console.post(edit, data=_form(console, edit, "save", name="Oakland families")).status_code == 303
    html = console.get(f"/console/rules/{rule['id']}").get_data(as_text=True)
    assert 'data-version="2"' in html and 'data-version="1"' in html and "Oakland families" in html
    listed = console.get("/console/rules").get_data(as_text=True)
    assert f'data-rule-id="{rule["id"]}"' in listed


def test_another_clinics_rule_is_a_404(console, client, tenant, other_tenant):
    made = client.post(
        "/api/follow-up-rules",
        json={"name": "Theirs", "trigger": "lead.created", **CITY_RULE},
        headers=other_tenant.headers("clinic_admin"),
    ).get_json()
    log_in(console, tenant, role="clinic_admin")
    assert console.get(f"/console/rules/{made['id']}").status_code == 404
    assert console.get(f"/console/rules/{made['id']}/edit").status_code == 404


def test_a_sequences_steps_are_shown_in_order(console, client, tenant):
    steps = [
        {"delay": {"amount": 0, "unit": "minutes"}, "channel": "sms", "body": "Hi {{ first_name }}"},
        {
            "delay": {"amount": 2, "unit": "days"},
            "channel": "email",
            "subject": "Still there?",
            "body": "Write back",
        },
    ]
    made = client.post(
        "/api/sequences",
        json={"name": "New lead nurture", "steps": steps},
        headers=tenant.headers("clinic_admin"),
    )
    assert made.status_code == 201, made.get_json()
    log_in(console, tenant, role="clinic_admin")
    assert "New lead nurture" in console.get("/console/sequences").get_data(as_text=True)
    html = console.get(f"/console/sequences/{made.get_json()['id']}").get_data(as_text=True)
    assert html.index("Hi {{ first_name }}") < html.index("Still there?")
    assert html.count("Still there?") == 1 and len(html) < 20_000  # the page, once
    assert "after 2 days" in html


def test_an_admin_moves_a_step_and_changes_a_delay_and_a_wrong_delay_is_named(console, client, tenant):
    steps = [
        {"delay": {"amount": 0, "unit": "minutes"}, "channel": "sms", "body": "First text"},
        {"delay": {"amount": 2, "unit": "days"}, "channel": "sms", "body": "Second text"},
    ]
    admin = tenant.headers("clinic_admin")
    made = client.post("/api/sequences", json={"name": "Two texts", "steps": steps}, headers=admin).get_json()
    log_in(console, tenant, role="clinic_admin")
    path = f"/console/sequences/{made['id']}"
    token = csrf_of(console.get(path).get_data(as_text=True))
    form = {"csrf_token": token, "amount-0": "0", "unit-0": "minutes", "amount-1": "3", "unit-1": "days"}
    assert console.post(f"{path}/steps", data={**form, "move": "1:up"}).status_code == 303
    saved = client.get(f"/api/sequences/{made['id']}", headers=admin).get_json()["steps"]
    assert [(s["body"], s["delay"]) for s in saved] == [
        ("Second text", {"amount": 3, "unit": "days"}),
        ("First text", {"amount": 0, "unit": "minutes"}),
    ]
    wrong = console.post(f"{path}/steps", data={**form, "amount-1": "soon"})
    assert wrong.status_code == 422 and "steps.1.delay.amount" in wrong.get_data(as_text=True)
    assert client.get(f"/api/sequences/{made['id']}", headers=admin).get_json()["steps"] == saved
