"""Work follows its owner: deactivation or out of office moves the user's open tasks and their
reminders to the leads' new owners, once, with a timeline entry."""

from __future__ import annotations

from tests.leadkit import add_user
from tests.tasks.taskkit import in_minutes, iso, jobs_of_task, lead_for, notifications_of, run_at
from tests.tasks.test_tasks_api import new_task


def _task_moves(client, tenant, lead_id):
    timeline = client.get(f"/api/leads/{lead_id}/activities", headers=tenant.headers()).get_json()
    return [e for e in timeline if e["type"] == "ASSIGNMENT_CHANGE" and (e["details"] or {}).get("task_id")]


def test_a_deactivated_users_tasks_and_reminders_move_once(app, client, tenant):
    leaving = tenant.users["treatment_coordinator"].id
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(60)))
    done = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(90)))
    client.post(f"/api/leads/tasks/{done['id']}/complete", json={}, headers=tenant.headers())
    [old_reminder] = jobs_of_task(app, task["id"], "task.reminder")
    taker = add_user(app, tenant)

    resp = client.put(f"/api/users/{leaving}", json={"active": False}, headers=tenant.headers())
    assert resp.status_code == 200
    moved = client.get(f"/api/leads/tasks/{task['id']}", headers=tenant.headers()).get_json()
    assert moved["assigned_to_id"] == taker
    closed = client.get(f"/api/leads/tasks/{done['id']}", headers=tenant.headers()).get_json()
    assert closed["assigned_to_id"] == leaving  # finished work stays where it was done
    [entry] = _task_moves(client, tenant, lead["id"])
    assert entry["details"]["task_id"] == task["id"] and entry["details"]["from_user_id"] == leaving
    assert entry["details"]["to_user_id"] == taker and entry["details"]["reason"] == "inactive"

    reminders = jobs_of_task(app, task["id"], "task.reminder")
    assert [j.status for j in reminders] == ["cancelled", "pending"]
    assert run_at(app, old_reminder, old_reminder.due_at) != "done"
    new_reminder = jobs_of_task(app, task["id"], "task.reminder", status="pending")[0]
    assert run_at(app, new_reminder, new_reminder.due_at) == "done"
    assert notifications_of(app, leaving, "reminder") == []
    assert len(notifications_of(app, taker, "reminder")) == 1

    # Once: back and away again moves nothing more (the task is the taker's now).
    client.put(f"/api/users/{leaving}", json={"active": True}, headers=tenant.headers())
    client.put(f"/api/users/{leaving}", json={"out_of_office": True}, headers=tenant.headers())
    assert len(jobs_of_task(app, task["id"], "task.reminder")) == 2
    assert len(_task_moves(client, tenant, lead["id"])) == 1


def test_out_of_office_moves_tasks_and_nobody_to_take_them_leaves_them(app, client, tenant):
    leaving = tenant.users["treatment_coordinator"].id
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"])
    # Nobody can take the lead (the only other owner is away): the task stays, the escalation remains.
    admin = tenant.users["clinic_admin"].id
    client.put(f"/api/users/{admin}", json={"out_of_office": True}, headers=tenant.headers())
    client.put(f"/api/users/{leaving}", json={"out_of_office": True}, headers=tenant.headers())
    kept = client.get(f"/api/leads/tasks/{task['id']}", headers=tenant.headers()).get_json()
    assert kept["assigned_to_id"] == leaving
    client.put(f"/api/users/{leaving}", json={"out_of_office": False}, headers=tenant.headers())
    taker = add_user(app, tenant)
    client.put(f"/api/users/{leaving}", json={"out_of_office": True}, headers=tenant.headers())
    moved = client.get(f"/api/leads/tasks/{task['id']}", headers=tenant.headers()).get_json()
    assert moved["assigned_to_id"] == taker
