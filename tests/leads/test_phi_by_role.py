"""PHI by role through the API: one policy (`lead:phi`) for the lead, task and activity answers and
the CSV exports. The front desk and an API key without `lead:phi` read a lead's contact details and
its work, never its patient details, insurance, address or notes (absent, not null); coordinators,
admins and a key created with `lead:phi` read them all. Each read's audit says whether PHI went out.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from app.platform import clock
from tests.leadkit import create_lead

NOTES = "Worried about pain; latex allergy"
DOB = "2011-03-14"
MEMBER_ID = "MBR-55-2207"
ADDRESS = "12 Orchard Lane"
TASK_DESCRIPTION = "Ask whether the night guard still hurts"
OUTCOME_NOTES = "Mother says the jaw clicks at night"
ACTIVITY_NOTES = "Discussed her sleep apnoea"
SECRETS = (NOTES, DOB, MEMBER_ID, ADDRESS, TASK_DESCRIPTION, OUTCOME_NOTES, ACTIVITY_NOTES)
PHI_KEYS = {"notes", "patient_dob", "insurance_member_id", "address_line1", "description", "outcome_notes"}


def _key(client, tenant, permissions) -> dict[str, str]:
    resp = client.post(
        "/api/api-keys", json={"name": "integration", "permissions": permissions}, headers=tenant.headers()
    )
    assert resp.status_code == 201, resp.get_json()
    return {"X-API-Key": resp.get_json()["key"]}


@pytest.fixture
def story(client, tenant):
    """A lead with every kind of PHI: its own fields, a task's description and outcome notes, and an
    activity's notes (the completed task's notes reach the timeline too)."""
    coordinator = tenant.headers("treatment_coordinator")
    lead = create_lead(
        client,
        tenant,
        role="treatment_coordinator",
        notes=NOTES,
        patient_dob=DOB,
        insurance_member_id=MEMBER_ID,
        address_line1=ADDRESS,
        city="Springfield",
        patient_first_name="Priya",
        patient_relationship="CHILD",
    )
    assigned = client.post(
        f"/api/leads/{lead['id']}/assign",
        json={"user_id": tenant.users["treatment_coordinator"].id},
        headers=tenant.headers("clinic_admin"),
    )
    assert assigned.status_code == 200, assigned.get_json()
    due = (clock.now() + timedelta(days=1)).isoformat()
    open_task = client.post(
        f"/api/leads/{lead['id']}/tasks",
        json={"title": "Check in", "type": "CALL", "due_at": due, "description": TASK_DESCRIPTION},
        headers=coordinator,
    )
    assert open_task.status_code == 201, open_task.get_json()
    done_task = client.post(
        f"/api/leads/{lead['id']}/tasks",
        json={"title": "Call back", "type": "CALL", "due_at": due},
        headers=coordinator,
    )
    completed = client.post(
        f"/api/leads/tasks/{done_task.get_json()['id']}/complete",
        json={"outcome": "done", "notes": OUTCOME_NOTES},
        headers=coordinator,
    )
    assert completed.status_code == 200, completed.get_json()
    activity = client.post(
        f"/api/leads/{lead['id']}/activities",
        json={"type": "NOTE", "notes": ACTIVITY_NOTES},
        headers=coordinator,
    )
    assert activity.status_code == 201, activity.get_json()
    return {
        "lead": lead["id"],
        "task": open_task.get_json()["id"],
        "done_task": done_task.get_json()["id"],
        "activity": activity.get_json()["id"],
    }


def _reads(story) -> list[str]:
    lead, task, activity = story["lead"], story["task"], story["activity"]
    return [
        "/api/leads",
        f"/api/leads/{lead}",
        f"/api/leads/{lead}/tasks",
        f"/api/leads/tasks/{task}",
        f"/api/leads/tasks/{story['done_task']}",
        "/api/leads/tasks?status=PENDING&status=COMPLETED",
        f"/api/leads/{lead}/activities",
        "/api/activities",
        f"/api/activities/{activity}",
    ]


def _keys(body) -> set[str]:
    items = body if isinstance(body, list) else [body]
    return {key for item in items for key in item}


def _headers(client, tenant, reader):
    if reader == "api key with lead:read":
        return _key(client, tenant, ["lead:read"])
    if reader == "api key with lead:phi":
        return _key(client, tenant, ["lead:read", "lead:phi"])
    return tenant.headers(reader)


@pytest.mark.parametrize("reader", ["front_desk", "api key with lead:read"])
def test_readers_without_lead_phi_get_none_of_it(client, tenant, story, reader):
    headers = _headers(client, tenant, reader)
    for path in _reads(story):
        resp = client.get(path, headers=headers)
        assert resp.status_code == 200, (path, resp.get_json())
        body = resp.get_data(as_text=True)
        assert [secret for secret in SECRETS if secret in body] == [], path
        assert not _keys(resp.get_json()) & PHI_KEYS, path
    # A patient's name answers no search either: the result would tell it.
    assert client.get("/api/leads?q=Priya", headers=headers).get_json() == []
    lead = client.get(f"/api/leads/{story['lead']}", headers=headers).get_json()
    # What they may read is still there: who to call, and where the lead stands.
    assert (lead["first_name"], lead["status"]) == ("Jane", "NEW") and "phone" in lead


@pytest.mark.parametrize("reader", ["treatment_coordinator", "clinic_admin", "api key with lead:phi"])
def test_readers_with_lead_phi_get_all_of_it(client, tenant, story, reader):
    headers = _headers(client, tenant, reader)
    lead = client.get(f"/api/leads/{story['lead']}", headers=headers).get_json()
    assert (lead["notes"], lead["patient_dob"], lead["insurance_member_id"]) == (NOTES, DOB, MEMBER_ID)
    assert (lead["address_line1"], lead["city"]) == (ADDRESS, "Springfield")
    listed = client.get("/api/leads", headers=headers).get_json()
    assert [row["notes"] for row in listed] == [NOTES]
    found = client.get("/api/leads?q=Priya", headers=headers).get_json()
    assert [(row["id"], row["patient_first_name"]) for row in found] == [(story["lead"], "Priya")]
    task = client.get(f"/api/leads/tasks/{story['task']}", headers=headers).get_json()
    assert task["description"] == TASK_DESCRIPTION
    done = client.get(f"/api/leads/tasks/{story['done_task']}", headers=headers).get_json()
    assert done["outcome_notes"] == OUTCOME_NOTES
    timeline = client.get(f"/api/leads/{story['lead']}/activities", headers=headers).get_json()
    assert ACTIVITY_NOTES in [row["notes"] for row in timeline]
    assert OUTCOME_NOTES in [row["notes"] for row in timeline]  # the TASK_COMPLETED entry
    one = client.get(f"/api/activities/{story['activity']}", headers=headers).get_json()
    assert one["notes"] == ACTIVITY_NOTES


def test_my_tasks_carry_descriptions_for_the_coordinator(client, tenant, story):
    mine = client.get("/api/leads/tasks/my-tasks", headers=tenant.headers("treatment_coordinator"))
    assert TASK_DESCRIPTION in [task.get("description") for task in mine.get_json()]


def test_a_write_answers_without_phi_to_a_writer_without_lead_phi(client, tenant, story):
    """A key that may update a lead but not read PHI gets its answer without the PHI it did not see."""
    headers = _key(client, tenant, ["lead:read", "lead:update"])
    resp = client.put(f"/api/leads/{story['lead']}", json={"preferred_time": "mornings"}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["preferred_time"] == "mornings" and "notes" not in resp.get_json()
    created = client.post(
        f"/api/leads/{story['lead']}/activities",
        json={"type": "NOTE", "notes": "Fears needles"},
        headers=headers,
    )
    assert created.status_code == 201 and "notes" not in created.get_json()


def _csv(resp) -> list[dict]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def test_the_exports_follow_the_same_policy(client, tenant, story):
    without = _key(client, tenant, ["lead:read"])
    with_phi = _key(client, tenant, ["lead:read", "lead:phi"])
    for headers in (without, tenant.headers("front_desk")):
        [row] = _csv(client.get("/api/leads/export", headers=headers))
        assert "notes" not in row and "patient_dob" not in row and row["first_name"] == "Jane"
        tasks = _csv(client.get("/api/leads/tasks/export", headers=headers))
        assert tasks and all("description" not in task for task in tasks)
    for headers in (with_phi, tenant.headers("treatment_coordinator")):
        [row] = _csv(client.get("/api/leads/export", headers=headers))
        assert (row["notes"], row["patient_dob"]) == (NOTES, DOB)
        tasks = _csv(client.get("/api/leads/tasks/export", headers=headers))
        assert TASK_DESCRIPTION in [task["description"] for task in tasks]


def test_each_read_audits_whether_phi_went_out(client, tenant, story):
    client.get(f"/api/leads/{story['lead']}", headers=tenant.headers("front_desk"))
    client.get(f"/api/leads/{story['lead']}", headers=tenant.headers("treatment_coordinator"))
    client.get("/api/leads", headers=tenant.headers("front_desk"))
    client.get(f"/api/leads/{story['lead']}/activities", headers=tenant.headers("treatment_coordinator"))
    audit = client.get("/api/audit-events?page_size=100", headers=tenant.headers("clinic_admin")).get_json()
    front_desk, coordinator = (
        f"user:{tenant.users[role].id}" for role in ("front_desk", "treatment_coordinator")
    )
    seen = {(event["action"], event["actor"], (event["after"] or {}).get("phi")) for event in audit}
    assert {
        ("lead.read", front_desk, False),
        ("lead.read", coordinator, True),
        ("lead.list", front_desk, False),
        ("lead.activities.read", coordinator, True),
    } <= seen
