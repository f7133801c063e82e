"""Bulk task actions through the API, run by a real worker (in-process thread worker, real Redis)."""

from datetime import datetime, timedelta

import pytest

from app.platform import clock
from tests.tasks.taskkit import in_minutes, iso, jobs_of_task, lead_for
from tests.tasks.test_tasks_api import new_task
from tests.workers import thread_worker, wait_for


@pytest.fixture
def small_chunks(app, monkeypatch):
    monkeypatch.setattr(app.config["SETTINGS"], "bulk_chunk_size", 2)


def act(client, tenant, body, expect=202, role="treatment_coordinator"):
    resp = client.post("/api/leads/tasks/bulk-actions", json=body, headers=tenant.headers(role))
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def finished(client, tenant, bulk_id):
    body = client.get(f"/api/bulk-jobs/{bulk_id}", headers=tenant.headers()).get_json()
    return body if body["status"] in ("done", "failed") else None


def task(client, tenant, task_id):
    return client.get(f"/api/leads/tasks/{task_id}", headers=tenant.headers()).get_json()


def run(app, client, tenant, body):
    with thread_worker(app):
        started = act(client, tenant, body)
        return started, wait_for(lambda: finished(client, tenant, started["id"]), timeout=60)


def test_reschedule_by_an_offset_moves_each_task_once_and_replaces_its_timers(
    app, client, tenant, small_chunks
):
    lead = lead_for(client, tenant)
    made = [new_task(client, tenant, lead["id"], due_at=iso(in_minutes(60 + i))) for i in range(5)]
    body = {"action": "reschedule", "task_ids": [t["id"] for t in made], "offset_minutes": 30}
    started, bulk = run(app, client, tenant, body)
    assert started["total"] == 5 and started["kind"] == "tasks.action"
    assert (bulk["status"], bulk["done"], bulk["failed"]) == ("done", 5, 0)
    for before in made:
        due = datetime.fromisoformat(task(client, tenant, before["id"])["due_at"])
        assert due == datetime.fromisoformat(before["due_at"]) + timedelta(minutes=30)
        reminders = jobs_of_task(app, before["id"], "task.reminder")
        live = [j for j in reminders if j.status != "cancelled"]
        # The first revision's reminder cancelled, one reminder of the second, 15 minutes before due.
        assert len(reminders) == 2 and len(live) == 1
        assert live[0].due_at == due - timedelta(minutes=15) and ":r2:" in live[0].dedupe_key


def test_reassign_by_filter_complete_and_cancel_and_closed_tasks_fail(app, client, tenant, small_chunks):
    admin = tenant.users["clinic_admin"].id
    lead = lead_for(client, tenant)
    emails = [new_task(client, tenant, lead["id"], type="EMAIL") for _ in range(3)]
    calls = [new_task(client, tenant, lead["id"], type="CALL") for _ in range(2)]
    body = {"action": "reassign", "filter": {"type": ["EMAIL"]}, "user_id": admin}
    _, bulk = run(app, client, tenant, body)
    assert (bulk["total"], bulk["done"]) == (3, 3)
    assert {task(client, tenant, t["id"])["assigned_to_id"] for t in emails} == {admin}
    assert {task(client, tenant, t["id"])["assigned_to_id"] for t in calls} != {admin}

    _, bulk = run(
        app, client, tenant, {"action": "complete", "task_ids": [calls[0]["id"]], "outcome": "not_needed"}
    )
    done = task(client, tenant, calls[0]["id"])
    assert (done["status"], done["outcome"]) == ("COMPLETED", "not_needed")

    ids = [calls[0]["id"], calls[1]["id"]]  # the first is already closed
    _, bulk = run(app, client, tenant, {"action": "cancel", "task_ids": ids})
    assert (bulk["status"], bulk["done"], bulk["failed"]) == ("done", 1, 1)
    assert bulk["errors"][0]["task_id"] == calls[0]["id"] and "completed" in bulk["errors"][0]["error"]
    assert task(client, tenant, calls[1]["id"])["status"] == "CANCELLED"


def test_reschedule_to_a_time(app, client, tenant):
    lead = lead_for(client, tenant)
    made = [new_task(client, tenant, lead["id"]) for _ in range(2)]
    target = (clock.now() + timedelta(days=2)).replace(microsecond=0)
    body = {"action": "reschedule", "task_ids": [t["id"] for t in made], "due_at": iso(target)}
    _, bulk = run(app, client, tenant, body)
    assert bulk["done"] == 2
    assert {datetime.fromisoformat(task(client, tenant, t["id"])["due_at"]) for t in made} == {target}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "explode", "task_ids": [1]}, "action"),
        ({"action": "cancel"}, "task_ids"),
        ({"action": "cancel", "task_ids": [1], "filter": {}}, "task_ids"),
        ({"action": "reassign", "task_ids": [1]}, "user_id"),
        ({"action": "reschedule", "task_ids": [1]}, "offset_minutes"),
        ({"action": "cancel", "task_ids": [1], "offset_minutes": 5}, "offset_minutes"),
        ({"action": "complete", "task_ids": [1], "outcome": "meh"}, "outcome"),
        ({"action": "cancel", "filter": {"status": ["NOPE"]}}, "filter"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, tenant, body, field):
    resp = act(client, tenant, body, expect=422)
    assert field in str(resp["errors"]), resp


def test_other_clinics_tasks_are_404_and_its_users_cannot_take_them(client, tenant, make_tenant):
    other = make_tenant("Elsewhere")
    theirs = new_task(client, other, lead_for(client, other)["id"], role="clinic_admin")
    act(client, tenant, {"action": "cancel", "task_ids": [theirs["id"]]}, expect=404)
    mine = new_task(client, tenant, lead_for(client, tenant)["id"])
    body = {"action": "reassign", "task_ids": [mine["id"]], "user_id": other.users["clinic_admin"].id}
    assert "user_id" in str(act(client, tenant, body, expect=422)["errors"])
    act(client, tenant, {"action": "cancel", "task_ids": [mine["id"]]}, role="front_desk", expect=403)
