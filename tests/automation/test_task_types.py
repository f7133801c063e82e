"""One task-type vocabulary for rules and tasks: the spec's LeadTaskType (issue 14 item 8)."""

from __future__ import annotations

import pytest

from app.domains.automation.defaults import DEFAULT_RULES
from app.domains.tasks.models import LeadTaskType
from app.platform import clock
from tests.automation.kit import open_all_day, run_events
from tests.tasks.taskkit import lead_for

SPEC_TYPES = ["CALL", "EMAIL", "SMS", "FOLLOW_UP", "CONSULTATION_CONFIRM", "PAPERWORK_REMINDER", "CUSTOM"]


def rule_making(task_type: str) -> dict:
    return {
        "name": f"A {task_type} task on a note",
        "trigger": "activity.logged",
        "conditions": [{"field": "event.activity_type", "operator": "equals", "value": "NOTE"}],
        "actions": [{"type": "create_task", "title": "Do it", "task_type": task_type}],
    }


def test_the_vocabulary_is_the_specs():
    assert [t.value for t in LeadTaskType] == SPEC_TYPES
    for rule in DEFAULT_RULES:
        for action in rule["actions"]:
            if action["type"] == "create_task" and "task_type" in action:
                assert action["task_type"] in SPEC_TYPES


@pytest.mark.parametrize("task_type", ["MEETING", "OTHER", "call", "VISIT"])
def test_a_rule_naming_another_task_type_is_422_naming_the_field(client, tenant, task_type):
    resp = client.post("/api/follow-up-rules", json=rule_making(task_type), headers=tenant.headers())
    assert resp.status_code == 422, resp.get_json()
    assert "task_type" in resp.get_json()["errors"]["json"]["actions"]["0"]


def test_editing_a_rule_to_another_task_type_is_422(client, tenant):
    made = client.post("/api/follow-up-rules", json=rule_making("CALL"), headers=tenant.headers())
    assert made.status_code == 201
    edited = client.patch(
        f"/api/follow-up-rules/{made.get_json()['id']}",
        json={"actions": rule_making("MEETING")["actions"]},
        headers=tenant.headers(),
    )
    assert edited.status_code == 422, edited.get_json()


@pytest.mark.parametrize("task_type", SPEC_TYPES)
def test_a_rule_makes_a_task_of_each_spec_type_that_the_task_api_shows(app, client, tenant, task_type):
    open_all_day(client, tenant, clock.now())
    made = client.post("/api/follow-up-rules", json=rule_making(task_type), headers=tenant.headers())
    assert made.status_code == 201, made.get_json()
    lead = lead_for(client, tenant)
    note = client.post(
        f"/api/leads/{lead['id']}/activities", json={"type": "NOTE", "notes": "n"}, headers=tenant.headers()
    )
    assert note.status_code == 201
    run_events(app, lead["id"], clock.now())
    listed = client.get(f"/api/leads/{lead['id']}/tasks", headers=tenant.headers()).get_json()
    assert [t["type"] for t in listed if t["title"] == "Do it"] == [task_type]
