"""Every GET answer of the API under the PHI policy (app/platform/phi_policy.py), with data touching each
domain: a lead with the patient's name, address, date of birth, insurance and notes; an update of it
(audited); a rule with conditions on its city and insurance that makes a task and a pending step on
the ledger; a message sent with a merge field. The walk enumerates the app's GET routes (url_map) and
fills their ids with what the test made; a reader without `lead:phi` finds none of the PHI values in
any answer, a reader with it finds each of them somewhere (so the walk can fail)."""

from __future__ import annotations

import re

import pytest

from app.platform import clock
from tests.automation.kit import open_all_day, run_events
from tests.console.test_console_pages import log_in
from tests.leadkit import create_lead

PATIENT = {
    "patient_first_name": "Wilhelmina",
    "patient_last_name": "Quackenbush",
    "patient_dob": "1961-03-05",
    "address_line1": "742 Evergreen Terrace",
    "city": "Shelbyville",
    "insurance_carrier": "Zephyr Dental",
    "insurance_member_id": "ZX-99817",
    "notes": "allergic to latex",
}
NEW_ADDRESS = "1313 Mockingbird Lane"
PHI_VALUES = (*PATIENT.values(), NEW_ADDRESS)
# "exists": the rule itself names no PHI value; what it saw on the lead is the lead's own city.
RULE = {
    "name": "Call insured leads who left a note",
    "trigger": "activity.logged",
    "conditions": [
        {"field": "event.activity_type", "operator": "equals", "value": "NOTE"},
        {"field": "lead.city", "operator": "exists", "value": True},
        {"field": "lead.insurance_carrier", "operator": "exists", "value": True},
    ],
    "actions": [
        # Texts written from merge fields: the task (and its "New task" inbox item to the owner), and an
        # inbox item to every front desk user now.
        {"type": "create_task", "title": "Call back {{ patient_first_name }}", "task_type": "CALL",
         "notify_owner": True},
        {"type": "notify", "roles": ["front_desk"], "title": "Call {{ patient_first_name }}",
         "body": "{{ patient_first_name }} ({{ first_name }}) left a note"},
        {"type": "notify", "lead_owner": True, "title": "Note", "delay": {"amount": 2, "unit": "hours"}},
    ],
}  # fmt: skip
TASK_TITLE = "Call back [patient_first_name]"
NO_PHI_KEY = ["lead:read", "lead:create", "lead:update", "lead:assign", "lead:convert", "lead:configure",
              "lead:analytics"]  # fmt: skip
PUBLIC = ("/api/calendar/", "/api/unsubscribe/", "/api/openapi", "/api/docs")


def _key(client, tenant, permissions: list[str]) -> dict:
    resp = client.post(
        "/api/api-keys", json={"name": "walk", "permissions": permissions}, headers=tenant.headers()
    )
    assert resp.status_code == 201, resp.get_json()
    return {"X-API-Key": resp.get_json()["key"]}


@pytest.fixture
def world(app, client, tenant):
    """The data every domain holds for one patient, and the ids to fill the routes' parameters."""
    admin = tenant.headers()
    open_all_day(client, tenant, clock.now())
    rule = client.post("/api/follow-up-rules", json=RULE, headers=admin)
    assert rule.status_code == 201, rule.get_json()
    lead = create_lead(client, tenant, role="clinic_admin", phone="(415) 555-2671", **PATIENT)
    update = client.put(f"/api/leads/{lead['id']}", json={"address_line1": NEW_ADDRESS}, headers=admin)
    assert update.status_code == 200, update.get_json()
    note = {"type": "NOTE", "notes": "n"}
    activity = client.post(f"/api/leads/{lead['id']}/activities", json=note, headers=admin)
    assert activity.status_code == 201, activity.get_json()
    run_events(app, lead["id"], clock.now())
    tasks = client.get(f"/api/leads/{lead['id']}/tasks", headers=admin).get_json()
    [task] = [t for t in tasks if t["title"] == TASK_TITLE]
    jobs = client.get(f"/api/jobs?subject=lead:{lead['id']}&kind=automation.step", headers=admin).get_json()
    template = client.post(
        "/api/message-templates",
        json={"name": "hello", "channel": "sms", "body": "Hi {{ patient_first_name }}"},
        headers=admin,
    ).get_json()
    return {
        "lead_id": lead["id"],
        "task_id": task["id"],
        "activity_id": activity.get_json()["id"],
        "rule_id": rule.get_json()["id"],
        "job_id": jobs[0]["id"],  # the rule's notify, due in two hours
        "template_id": template["id"],
        "user_id": tenant.users["front_desk"].id,
        "index": 0,
    }


def _get_routes(app) -> list[str]:
    """Every GET route of the API (the app's url_map), public pages and the document left out."""
    rules = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and rule.rule.startswith("/api/")
    ]
    return sorted({rule for rule in rules if not rule.startswith(PUBLIC)})


def _walk(app, client, headers: dict, ids: dict) -> dict[str, str]:
    """{path: answer text} of every GET route, its parameters filled (1 where nothing was made)."""
    answers = {}
    for rule in _get_routes(app):
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(ids.get(m.group(1), 1)), rule)
        resp = client.get(path, headers=headers)
        assert resp.status_code < 500, (path, resp.status_code)
        answers[path] = resp.get_data(as_text=True)
    return answers


def _found(answers: dict[str, str]) -> dict[str, list[str]]:
    return {value: [path for path, text in answers.items() if value in text] for value in PHI_VALUES}


def _send_message(client, lead_id: int, headers: dict) -> dict:
    body = {"channel": "sms", "body": "Hi {{ patient_first_name }}, call us back?"}
    resp = client.post(f"/api/leads/{lead_id}/messages", json=body, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


@pytest.mark.parametrize("reader", ["front_desk", "api key without lead:phi"])
def test_no_get_answer_holds_phi_for_a_reader_without_lead_phi(app, client, tenant, world, reader):
    headers = tenant.headers("front_desk") if reader == "front_desk" else _key(client, tenant, NO_PHI_KEY)
    _send_message(client, world["lead_id"], tenant.headers())
    leaked = {value: paths for value, paths in _found(_walk(app, client, headers, world)).items() if paths}
    assert leaked == {}


def test_a_reader_with_lead_phi_finds_each_value_the_walk_looks_for(app, client, tenant, world):
    """The walk can fail: the same answers, read with `lead:phi`, hold every PHI value."""
    _send_message(client, world["lead_id"], tenant.headers())
    # The key first: each lead read the walk makes is audited, and the audit trail is paged newest first.
    answers = _walk(app, client, _key(client, tenant, [*NO_PHI_KEY, "lead:phi"]), world)
    coordinator = _walk(app, client, tenant.headers("treatment_coordinator"), world)
    answers = {path: answers[path] + coordinator[path] for path in answers}
    found = _found(answers)
    assert [value for value, paths in found.items() if not paths] == []
    # Where each finding of issue 42 showed them: the audit trail, the rule-made task, the ledger.
    assert "/api/audit-events" in found[NEW_ADDRESS] and "/api/audit-events" in found["742 Evergreen Terrace"]
    assert f"/api/leads/{world['lead_id']}/tasks" in found["Shelbyville"]
    assert "/api/jobs" in found["Zephyr Dental"]
    # The rule-made task's full title, kept in its description (PHI): "Call back Wilhelmina".
    assert f"/api/leads/{world['lead_id']}/tasks" in found["Wilhelmina"]


def test_an_audited_update_keeps_the_address_and_name_from_a_key_without_lead_phi(client, tenant, world):
    def update(headers):
        events = client.get("/api/audit-events?action=lead.update", headers=headers)
        assert events.status_code == 200, events.get_json()
        [event] = events.get_json()
        return event

    key = update(_key(client, tenant, NO_PHI_KEY))
    assert (key["before"], key["after"]) == ({}, {})
    full = update(_key(client, tenant, [*NO_PHI_KEY, "lead:phi"]))
    assert (full["before"], full["after"]) == (
        {"address_line1": "742 Evergreen Terrace"},
        {"address_line1": NEW_ADDRESS},
    )


def test_an_audit_event_of_no_one_record_is_documented_with_a_null_subject(client, tenant):
    """schemathesis: `subject_id: null` where the document said string."""
    assert client.get("/api/leads/export", headers=tenant.headers()).status_code == 200
    [event] = client.get("/api/audit-events?action=lead.export", headers=tenant.headers()).get_json()
    assert event["subject_id"] is None
    spec = client.get("/api/openapi.json").get_json()
    subject_id = spec["components"]["schemas"]["AuditEventOut"]["properties"]["subject_id"]
    assert subject_id.get("nullable") is True or "null" in subject_id.get("type", [])


def test_a_message_echo_shows_the_merged_patient_name_only_with_lead_phi(client, tenant, world):
    without = _send_message(client, world["lead_id"], _key(client, tenant, NO_PHI_KEY))
    assert without["body"] == "Hi [patient_first_name], call us back?"
    with_phi = _send_message(client, world["lead_id"], tenant.headers("treatment_coordinator"))
    assert with_phi["body"] == "Hi Wilhelmina, call us back?"


def test_a_rule_made_task_and_job_keep_what_the_rule_saw_from_front_desk(client, tenant, world):
    def city_condition(origin):
        return next(c for c in origin["conditions"] if c["field"] == "lead.city")

    task = f"/api/leads/tasks/{world['task_id']}"
    desk = client.get(task, headers=tenant.headers("front_desk")).get_json()
    assert city_condition(desk["origin"]) == {"field": "lead.city", "operator": "exists"}
    coordinator = client.get(task, headers=tenant.headers("treatment_coordinator")).get_json()
    assert city_condition(coordinator["origin"])["seen"] == "Shelbyville"
    job = f"/api/jobs/{world['job_id']}"
    key = client.get(job, headers=_key(client, tenant, NO_PHI_KEY)).get_json()
    assert "seen" not in city_condition(key["origin"])
    full = client.get(job, headers=tenant.headers()).get_json()
    assert city_condition(full["origin"])["seen"] == "Shelbyville"


def test_the_console_lead_page_shows_front_desk_none_of_what_the_rule_saw(app, tenant, world):
    def page(role):
        with app.test_client() as console:
            log_in(console, tenant, role)
            resp = console.get(f"/console/leads/{world['lead_id']}")
            assert resp.status_code == 200
            return resp.get_data(as_text=True)

    desk = page("front_desk")
    assert "City: what it checks and what it saw are not shown to you." in desk
    assert [value for value in PHI_VALUES if value in desk] == []
    assert "City is filled in: it is “Shelbyville”, so this holds." in page("treatment_coordinator")


def test_texts_merged_from_a_phi_field_show_front_desk_its_name_not_the_patient(client, tenant, world):
    """A rule's task title and inbox items written from `{{ patient_first_name }}`: stored as
    `[patient_first_name]` (every reader of tasks reads the title), the contact's own name merged;
    the full title is kept in the task's description, which only a reader with `lead:phi` gets."""
    desk = tenant.headers("front_desk")
    for path in ("/api/leads/tasks", f"/api/leads/{world['lead_id']}/tasks"):
        resp = client.get(path, headers=desk)
        assert resp.status_code == 200, (path, resp.get_json())
        assert "Wilhelmina" not in resp.get_data(as_text=True)
    listed = client.get(f"/api/leads/{world['lead_id']}/tasks", headers=desk).get_json()
    assert TASK_TITLE in [task["title"] for task in listed]
    inbox = client.get("/api/me/notifications", headers=desk).get_json()
    assert [(item["title"], item["body"]) for item in inbox if item["kind"] == "automation"] == [
        ("Call [patient_first_name]", "[patient_first_name] (Jane) left a note")
    ]
    task = f"/api/leads/tasks/{world['task_id']}"
    coordinator = client.get(task, headers=tenant.headers("treatment_coordinator")).get_json()
    assert coordinator["title"] == TASK_TITLE
    assert coordinator["description"] == "Call back Wilhelmina"
    assert "description" not in client.get(task, headers=desk).get_json()
