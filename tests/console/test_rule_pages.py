"""The rules and sequences pages through Flask's test client, posted as a browser posts their forms:
who may open them; the builder made of plain options (pickers and a form per action, no JSON typed)
turned into the rule the API takes; its errors said in words beside their field, and only once
something was posted; a lead found by name to try a draft on, the try and the 30 days' replay read
as sentences, nothing written; an edit that changes nothing keeps every default rule as it was; the
rule's page in words; a sequence's steps, waits, paths and entry and exit conditions in words, its
waits and conditions edited in place. The browser journey is in test_rule_journeys.py."""

from __future__ import annotations

import re

import pytest
from werkzeug.datastructures import MultiDict

from tests.console.rule_forms import form_fields, visible_text
from tests.console.test_console_pages import csrf_of, log_in
from tests.leadkit import create_lead

CITY_RULE = {
    "conditions": [{"field": "lead.city", "operator": "equals", "value": "Oakland"}],
    "actions": [{"type": "create_task", "title": "Call the Oakland family"}],
}
CITY_FORM = {
    "name": "Oakland callers",
    "trigger": "lead.created",
    "active": "on",
    "conditions.0.field": "lead.city",
    "conditions.0.operator": "equals",
    "conditions.0.value": "Oakland",
    "actions.0.type": "create_task",
    "actions.0.title": "Call the Oakland family",
    "actions.0.task_type": "CALL",
    "actions.0.assignee": "lead_owner",
    "actions.0.priority": "NORMAL",
    "actions.0.delay.amount": "0",
    "actions.0.delay.unit": "minutes",
}
PAGES = ("/console/rules", "/console/rules/new", "/console/sequences", "/console/rules/leads?q=ana")


@pytest.fixture
def other_tenant(make_tenant):
    return make_tenant("Another Practice")


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _form(console, path: str, do: str, changes: dict | None = None, extra=()) -> MultiDict:
    """The builder's form as a browser posts it: the Oakland rule, with `changes` and `extra` fields."""
    token = csrf_of(console.get(path).get_data(as_text=True))
    fields = {**CITY_FORM, **(changes or {}), "csrf_token": token, "do": do}
    return MultiDict([*((k, v) for k, v in fields.items() if v is not None), *extra])


def _rules(client, tenant) -> list[dict]:
    return client.get("/api/follow-up-rules", headers=tenant.headers("clinic_admin")).get_json()


def _slot(html: str, path: str) -> str:
    """The text of the error slot beside the field `path` names."""
    found = re.search(rf'data-error-for="{re.escape(path)}">([^<]*)</p>', html)
    assert found, f"no error slot for {path}"
    return found.group(1)


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


def test_the_builder_shows_no_problem_before_anything_is_typed(console, tenant):
    log_in(console, tenant, role="clinic_admin")
    html = console.get("/console/rules/new").get_data(as_text=True)
    assert 'id="problems"' not in html and "problem" not in visible_text(html)
    slots = re.findall(r'class="field-error"[^>]*>([^<]*)</p>', html)
    assert slots and all(text == "" for text in slots)  # every field has its slot, all empty
    assert 'aria-invalid="true"' not in html
    assert '<textarea id="f-actions-0-description"' in html and "[" not in visible_text(html)


def test_a_wrong_value_is_said_in_words_beside_its_field(console, tenant):
    log_in(console, tenant, role="clinic_admin")
    nested = {
        "conditions.0.kind": "any",
        "conditions.0.field": None,
        "conditions.0.operator": None,
        "conditions.0.value": None,
        "conditions.0.any.0.field": "lead.city",
        "conditions.0.any.0.operator": "equals",
        "conditions.0.any.0.value": "Oakland",
        "conditions.0.any.1.field": "lead.city",
        "conditions.0.any.1.operator": "in",
        "conditions.0.any.1.value": " , ",
    }
    data = _form(console, "/console/rules/new", "check", nested)
    resp = console.post("/console/rules/check", data=data, headers={"X-CSRFToken": data["csrf_token"]})
    assert resp.status_code == 200
    assert resp.get_json()["errors"] == {"conditions.0.any.1.value": ["Choose or type at least one value."]}
    assert resp.get_json()["words"].startswith("When a new lead comes in, if (City is “Oakland” or City is")
    page = console.post("/console/rules/new", data=data)  # without the script: the same, on the page
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert _slot(html, "conditions.0.any.1.value") == "Choose or type at least one value."
    assert "Condition 1.2\n: Choose or type at least one value." in visible_text(html)
    assert _slot(html, "conditions.0.any.0.value") == ""  # only the wrong one


def test_an_unknown_field_and_a_missing_name_are_said_at_once(console, tenant):
    log_in(console, tenant, role="clinic_admin")
    wrong = {"conditions.0.field": "lead.shoe_size", "name": ""}
    errors = console.post("/console/rules/check", data=_form(console, "/console/rules/new", "check", wrong))
    assert errors.get_json()["errors"] == {
        "conditions.0.field": ["Choose what to check."],
        "name": ["Give it a name."],
    }
    typed = {
        "conditions.0.field": "lead.score",
        "conditions.0.operator": "greater_than",
        "conditions.0.value": "high",
    }
    errors = console.post("/console/rules/check", data=_form(console, "/console/rules/new", "check", typed))
    assert errors.get_json()["errors"] == {"conditions.0.value": ["Type a number."]}


def test_a_rule_is_made_from_plain_options_without_json(console, client, tenant):
    admin = tenant.headers("clinic_admin")
    template = client.post(
        "/api/message-templates",
        json={"name": "Welcome text", "channel": "sms", "body": "Hi {{ first_name }}"},
        headers=admin,
    ).get_json()
    steps = [{"delay": {"amount": 0, "unit": "minutes"}, "channel": "sms", "body": "Hello"}]
    sequence = client.post(
        "/api/sequences", json={"name": "Welcome", "steps": steps}, headers=admin
    ).get_json()
    coordinator = tenant.users["treatment_coordinator"].id
    log_in(console, tenant, role="clinic_admin")
    page = visible_text(console.get("/console/rules/new").get_data(as_text=True))
    assert "Welcome text" not in page  # a text's template picker shows once the action is a text
    plain = {
        "actions.0.title": "Call {{ first_name }} today",
        "actions.0.assignee": f"user:{coordinator}",
        "actions.0.priority": "HIGH",
        "actions.0.delay.amount": "2",
        "actions.0.delay.unit": "business_hours",
        "actions.1.type": "send_sms",
        "actions.1.template_id": str(template["id"]),
        "actions.1.body": "",
        "actions.2.type": "update_stage",
        "actions.2.stage": "lost",
        "actions.2.reason": "NOT_READY",
        "actions.3.type": "notify",
        "actions.3.title": "A new Oakland family",
        "actions.4.type": "enroll_sequence",
        "actions.4.sequence_id": str(sequence["id"]),
    }
    whom = [("actions.3.whom", "owner"), ("actions.3.whom", "role:clinic_admin")]
    drawn = console.post(
        "/console/rules/new", data=_form(console, "/console/rules/new", "redraw", plain, whom)
    )
    html = drawn.get_data(as_text=True)
    assert drawn.status_code == 200 and "Welcome text" in visible_text(html)
    assert 'value="lost" selected' in html and "Why lost" in visible_text(html)  # the reason for lost
    saved = console.post("/console/rules/new", data=_form(console, "/console/rules/new", "save", plain, whom))
    assert saved.status_code == 303
    rule = next(r for r in _rules(client, tenant) if r["name"] == "Oakland callers")
    assert rule["conditions"] == CITY_RULE["conditions"]
    assert rule["actions"] == [
        {
            "type": "create_task",
            "title": "Call {{ first_name }} today",
            "assignee": {"kind": "user", "user_id": coordinator},
            "priority": "HIGH",
            "delay": {"amount": 2, "unit": "business_hours"},
        },
        {"type": "send_sms", "template_id": template["id"]},
        {"type": "update_stage", "stage": "lost", "reason": "NOT_READY"},
        {"type": "notify", "lead_owner": True, "roles": ["clinic_admin"], "title": "A new Oakland family"},
        {"type": "enroll_sequence", "sequence_id": sequence["id"]},
    ]
    words = visible_text(console.get(f"/console/rules/{rule['id']}").get_data(as_text=True))
    assert (
        "Create a task “Call {{ first_name }} today” (call, priority high) for coordinator"
        in words.replace(tenant.users["treatment_coordinator"].name, "coordinator")
    )
    assert "due 2 business hours later" in words and "Send the text from the template “Welcome text”" in words
    assert "Start the sequence “Welcome”" in words and "Tell the lead's owner and the clinic admins" in words


def test_rows_and_actions_are_added_and_removed_without_the_script(console, tenant):
    log_in(console, tenant, role="clinic_admin")
    html = console.post(
        "/console/rules/new", data=_form(console, "/console/rules/new", "add-group:conditions")
    )
    html = html.get_data(as_text=True)
    fields = form_fields(html, "rule-form")
    assert ("conditions.1.kind", "any") in fields and "Group 2: how its conditions count" in html
    assert 'data-focus="f-conditions-1-field f-conditions-1-kind f-conditions-1"' in html
    grown = console.post("/console/rules/new", data=MultiDict([*fields, ("do", "add:conditions.1")]))
    assert "Condition 2.2: what to check" in grown.get_data(as_text=True)
    fewer = console.post("/console/rules/new", data=MultiDict([*fields, ("do", "remove:conditions.0")]))
    kept = dict(form_fields(fewer.get_data(as_text=True), "rule-form"))
    assert kept["conditions.0.kind"] == "any" and "conditions.1.kind" not in kept
    more = console.post("/console/rules/new", data=MultiDict([*fields, ("do", "add-action")]))
    assert "Action 2: what to do" in more.get_data(as_text=True)


def test_every_default_rule_saved_unchanged_from_its_form_stays_as_it_was(console, client, tenant):
    before = _rules(client, tenant)
    assert len(before) > 10
    log_in(console, tenant, role="clinic_admin")
    for rule in before:
        path = f"/console/rules/{rule['id']}/edit"
        fields = form_fields(console.get(path).get_data(as_text=True), "rule-form")
        answer = console.post(path, data=MultiDict([*fields, ("do", "save")]))
        assert answer.status_code == 303, (rule["name"], visible_text(answer.get_data(as_text=True))[-500:])
    assert _rules(client, tenant) == before  # nothing lost or added: not even a new version


def test_a_lead_is_found_by_name_and_the_draft_tried_on_it_in_sentences(
    console, client, tenant, other_tenant
):
    oakland = create_lead(client, tenant, first_name="Ana", last_name="Ruiz", city="Oakland")
    elsewhere = create_lead(client, tenant, first_name="Anabel", last_name="Li", city="Fresno")
    create_lead(client, other_tenant, first_name="Anastasia", last_name="Other")
    before = _rules(client, tenant)
    log_in(console, tenant, role="clinic_admin")
    found = console.get("/console/rules/leads?q=Ana").get_data(as_text=True)
    assert "Ana Ruiz" in found and "Anabel Li" in found and "Anastasia" not in found
    assert f'name="lead_id" value="{oakland["id"]}"' in found
    listed = console.post(
        "/console/rules/new", data=_form(console, "/console/rules/new", "find", {"lead_q": "ruiz"})
    )
    assert "Ana Ruiz" in visible_text(listed.get_data(as_text=True))
    unchosen = console.post(
        "/console/rules/new", data=_form(console, "/console/rules/new", "test", {"lead_q": "Ana"})
    )
    assert unchosen.status_code == 422
    assert _slot(unchosen.get_data(as_text=True), "lead_id") == "Find the lead by name, then choose it."
    tried = _form(console, "/console/rules/new", "test", {"lead_q": "Ana", "lead_id": str(oakland["id"])})
    words = visible_text(console.post("/console/rules/new", data=tried).get_data(as_text=True))
    assert "Ana Ruiz\nmatches this rule" in words
    assert "City is “Oakland”: it is “Oakland”, so this holds." in words
    assert re.search(
        r"Create a task “Call the Oakland family” \(call\) for the lead's owner, due at once: \w{3} ", words
    )
    tried = _form(
        console, "/console/rules/new", "test", {"lead_q": "Anabel", "lead_id": str(elsewhere["id"])}
    )
    words = visible_text(console.post("/console/rules/new", data=tried).get_data(as_text=True))
    assert "Anabel Li\ndoes not match this rule" in words
    assert "City is “Oakland”: it is “Fresno”, so this does not hold." in words
    assert "So it would do nothing for them." in words
    assert _rules(client, tenant) == before  # nothing saved


def test_another_clinics_lead_cannot_be_tried(console, client, tenant, other_tenant):
    theirs = create_lead(client, other_tenant, first_name="Zed", last_name="Other")
    log_in(console, tenant, role="clinic_admin")
    data = _form(console, "/console/rules/new", "test", {"lead_id": str(theirs["id"])})
    resp = console.post("/console/rules/new", data=data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "Zed" not in html
    assert _slot(html, "lead_id") == "Find the lead by name, then choose it."


def test_the_30_days_replay_reads_as_sentences_with_who_and_why(console, client, tenant):
    oakland = create_lead(client, tenant, first_name="Ana", last_name="Ruiz", city="Oakland")
    elsewhere = create_lead(client, tenant, first_name="Bo", last_name="Li", city="Fresno")
    before = _rules(client, tenant)
    log_in(console, tenant, role="clinic_admin")
    html = console.post("/console/rules/new", data=_form(console, "/console/rules/new", "simulate"))
    html = html.get_data(as_text=True)
    words = visible_text(html)
    assert (
        "In the last 30 days a new lead came in 2 times: "
        "this rule would have matched 1 of them and made 1 task." in words
    )
    assert f'data-lead-id="{oakland["id"]}"' in html and f'data-lead-id="{elsewhere["id"]}"' not in html
    assert "Ana Ruiz" in words and "City is “Oakland”: it is “Oakland”, so this holds." in words
    assert _rules(client, tenant) == before  # nothing saved


def test_save_makes_the_rule_and_an_edit_a_new_version_each_in_words(console, client, tenant):
    log_in(console, tenant, role="clinic_admin")
    resp = console.post("/console/rules/new", data=_form(console, "/console/rules/new", "save"))
    assert resp.status_code == 303
    rule = next(r for r in _rules(client, tenant) if r["name"] == "Oakland callers")
    assert rule["conditions"] == CITY_RULE["conditions"] and rule["actions"] == CITY_RULE["actions"]
    assert rule["version"] == 1
    edit = f"/console/rules/{rule['id']}/edit"
    changed = {
        "name": "Oakland families",
        "actions.0.delay.amount": "1",
        "actions.0.delay.unit": "business_days",
    }
    assert console.post(edit, data=_form(console, edit, "save", changed)).status_code == 303
    html = console.get(f"/console/rules/{rule['id']}").get_data(as_text=True)
    assert 'data-version="2"' in html and 'data-version="1"' in html and "Oakland families" in html
    words = visible_text(html)
    assert (
        "When a new lead comes in, if City is “Oakland”: "
        "create a task “Call the Oakland family” (call) for the" in words
    )
    assert "due 1 business day later" in words and "due at once" in words  # version 2, and version 1
    admin = tenant.users["clinic_admin"].name
    assert f"by {admin}" in words
    listed = visible_text(console.get("/console/rules").get_data(as_text=True))
    assert "Oakland families\nA new lead comes in\nCreate a task “Call the Oakland family”" in listed


def test_another_clinics_rule_is_a_404(console, client, tenant, other_tenant):
    made = client.post(
        "/api/follow-up-rules",
        json={"name": "Theirs", "trigger": "lead.created", **CITY_RULE},
        headers=other_tenant.headers("clinic_admin"),
    ).get_json()
    log_in(console, tenant, role="clinic_admin")
    assert console.get(f"/console/rules/{made['id']}").status_code == 404
    assert console.get(f"/console/rules/{made['id']}/edit").status_code == 404


# --- sequences ------------------------------------------------------------------------------------

PRICE_GUIDE = {
    "name": "Price guide",
    "steps": [
        {
            "key": "intro",
            "delay": {"amount": 0, "unit": "minutes"},
            "channel": "email",
            "subject": "Your price guide",
            "body": "Hi {{ first_name }}, here it is",
            "wait": {"for": ["link_clicked", "replied"], "timeout": {"amount": 2, "unit": "days"}},
            "on": {"link_clicked": "text", "timeout": "call"},
        },
        {
            "key": "text",
            "delay": {"amount": 0, "unit": "minutes"},
            "channel": "sms",
            "body": "Glad you had a look!",
            "next": "end",
        },
        {
            "key": "call",
            "delay": {"amount": 1, "unit": "business_days"},
            "channel": "call",
            "title": "Call about the price guide",
        },
    ],
    "entry_conditions": [{"field": "lead.city", "operator": "equals", "value": "Oakland"}],
    "exit_conditions": [{"field": "lead.status", "operator": "in", "value": ["CONVERTED", "LOST"]}],
}


def _sequence(client, tenant, body: dict) -> dict:
    made = client.post("/api/sequences", json=body, headers=tenant.headers("clinic_admin"))
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def test_a_sequence_reads_as_steps_with_waits_paths_and_its_entry_and_exit(console, client, tenant):
    made = _sequence(client, tenant, PRICE_GUIDE)
    log_in(console, tenant, role="clinic_admin")
    assert "Price guide" in console.get("/console/sequences").get_data(as_text=True)
    words = visible_text(console.get(f"/console/sequences/{made['id']}").get_data(as_text=True))
    assert "A lead is started on it only if all of these are true:\nCity is “Oakland”" in words
    assert "A lead stops as soon as all of these are true:\nStatus is one of Converted or Lost" in words
    assert "At once: send an email “Your price guide”." in words
    assert "Then it waits up to 2 days until they click a link or they reply." in words
    assert (
        "If they click a link: on to step 2.\nIf they reply: on to step 2.\n"
        "If nothing comes in time: on to step 3." in words
    )
    assert "Step 2" in words and "Then the sequence is over." in words
    assert "After 1 business day: make a call task “Call about the price guide”." in words


def test_waits_are_changed_in_words_and_a_step_moved_and_a_wrong_wait_said_beside_it(console, client, tenant):
    steps = [
        {"delay": {"amount": 0, "unit": "minutes"}, "channel": "sms", "body": "First text"},
        {"delay": {"amount": 2, "unit": "days"}, "channel": "sms", "body": "Second text"},
    ]
    admin = tenant.headers("clinic_admin")
    made = _sequence(client, tenant, {"name": "Two texts", "steps": steps})
    log_in(console, tenant, role="clinic_admin")
    path = f"/console/sequences/{made['id']}"
    fields = dict(form_fields(console.get(path).get_data(as_text=True), "steps-form"))
    assert fields["steps.1.delay.amount"] == "2" and fields["steps.1.delay.unit"] == "days"
    form = {**fields, "steps.1.delay.amount": "3", "steps.1.delay.unit": "business_days"}
    assert console.post(f"{path}/steps", data={**form, "move": "1:up"}).status_code == 303
    saved = client.get(f"/api/sequences/{made['id']}", headers=admin).get_json()["steps"]
    assert [(s["body"], s["delay"]) for s in saved] == [
        ("Second text", {"amount": 3, "unit": "business_days"}),
        ("First text", {"amount": 0, "unit": "minutes"}),
    ]
    wrong = console.post(f"{path}/steps", data={**form, "steps.1.delay.amount": "soon"})
    html = wrong.get_data(as_text=True)
    assert wrong.status_code == 422 and _slot(html, "steps.1.delay") == "A whole number, 0 or more."
    assert "Step 2\n: A whole number, 0 or more." in visible_text(html)
    assert client.get(f"/api/sequences/{made['id']}", headers=admin).get_json()["steps"] == saved


def test_a_waiting_steps_timeout_and_the_entry_conditions_are_edited_in_place(console, client, tenant):
    admin = tenant.headers("clinic_admin")
    made = _sequence(client, tenant, PRICE_GUIDE)
    log_in(console, tenant, role="clinic_admin")
    path = f"/console/sequences/{made['id']}"
    fields = form_fields(console.get(path).get_data(as_text=True), "steps-form")
    unchanged = console.post(f"{path}/steps", data=MultiDict(fields))
    assert unchanged.status_code == 303
    after = client.get(f"/api/sequences/{made['id']}", headers=admin).get_json()
    assert (after["steps"], after["entry_conditions"], after["exit_conditions"]) == (
        made["steps"],
        made["entry_conditions"],
        made["exit_conditions"],
    )
    grown = console.post(f"{path}/steps", data=MultiDict([*fields, ("do", "add:entry_conditions")]))
    assert "Condition 2: what to check" in grown.get_data(as_text=True)  # drawn again, not saved
    form = {
        **dict(fields),
        "steps.0.wait.timeout.amount": "3",
        "steps.0.wait.timeout.unit": "business_days",
        "entry_conditions.0.operator": "in",
        "entry_conditions.0.value": "Oakland, Berkeley",
    }
    assert console.post(f"{path}/steps", data=form).status_code == 303
    after = client.get(f"/api/sequences/{made['id']}", headers=admin).get_json()
    assert after["steps"][0]["wait"]["timeout"] == {"amount": 3, "unit": "business_days"}
    assert after["entry_conditions"] == [
        {"field": "lead.city", "operator": "in", "value": ["Oakland", "Berkeley"]}
    ]
    words = visible_text(console.get(path).get_data(as_text=True))
    assert "City is one of “Oakland” or “Berkeley”" in words and "waits up to 3 business days" in words
