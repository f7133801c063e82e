"""Follow-up tasks over the API: create, update, complete, snooze, cancel, lists, templates."""

from datetime import datetime, timedelta

from app.platform import clock
from tests.tasks.taskkit import in_minutes, iso, lead_for, notifications_of


def new_task(client, tenant, lead_id, role="treatment_coordinator", expect=201, **fields):
    body = {"title": "Call back", "type": "CALL", "due_at": iso(in_minutes(60)), **fields}
    body = {key: value for key, value in body.items() if value is not None}  # None: leave the field out
    resp = client.post(f"/api/leads/{lead_id}/tasks", json=body, headers=tenant.headers(role))
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def test_task_goes_to_the_leads_coordinator_by_default(client, tenant):
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"], role="clinic_admin")
    assert task["assigned_to_id"] == tenant.users["treatment_coordinator"].id
    assert task["status"] == "PENDING" and task["priority"] == "NORMAL"
    assert task["reminder_at"] is not None


def test_assignee_of_a_task_someone_else_made_is_told_at_once(app, client, tenant):
    lead = lead_for(client, tenant)
    coordinator = tenant.users["treatment_coordinator"].id
    before = len(notifications_of(app, coordinator, "new_task"))
    new_task(client, tenant, lead["id"], role="clinic_admin", title="Send brochure")
    told = notifications_of(app, coordinator, "new_task")
    assert len(told) == before + 1 and "Send brochure" in told[-1].title
    # Making a task for oneself tells nobody.
    new_task(client, tenant, lead["id"], role="treatment_coordinator", title="Mine")
    assert len(notifications_of(app, coordinator, "new_task")) == before + 1


def test_bad_task_input_is_422_naming_the_field(client, tenant):
    lead = lead_for(client, tenant)
    cases = [
        ({"title": "x", "type": "TELEPATHY", "due_at": iso(in_minutes(5))}, "type"),
        ({"title": "x", "type": "CALL", "due_at": "2026-11-30T10:00:00"}, "due_at"),  # no offset
        ({"title": "x", "type": "CALL"}, "due_at"),
        ({"type": "CALL", "due_at": iso(in_minutes(5))}, "title"),
        (
            {"title": "x", "type": "CALL", "due_at": iso(in_minutes(5)), "assigned_to_id": 999999},
            "assigned_to_id",
        ),
        ({"title": "x", "type": "CALL", "due_at": iso(in_minutes(5)), "priority": "MEH"}, "priority"),
        ({"template_id": 999999}, "template_id"),
    ]
    for body, field in cases:
        resp = client.post(
            f"/api/leads/{lead['id']}/tasks", json=body, headers=tenant.headers("clinic_admin")
        )
        assert resp.status_code == 422, (body, resp.get_json())
        assert field in resp.get_json()["errors"]["json"], (body, resp.get_json())


def test_the_doctor_cannot_assign_tasks_to_themselves(client, tenant):
    lead = lead_for(client, tenant)
    resp = client.post(
        f"/api/leads/{lead['id']}/tasks",
        headers=tenant.headers("clinic_admin"),
        json={
            "title": "x",
            "type": "CALL",
            "due_at": iso(in_minutes(5)),
            "assigned_to_id": tenant.users["doctor"].id,
        },
    )
    assert resp.status_code == 422


def test_tasks_on_converted_or_lost_leads_are_refused(client, tenant):
    converted, lost = lead_for(client, tenant), lead_for(client, tenant)
    assert client.post(f"/api/leads/{converted['id']}/convert", headers=tenant.headers()).status_code == 200
    assert (
        client.post(
            f"/api/leads/{lost['id']}/lost", json={"reason": "RELOCATED"}, headers=tenant.headers()
        ).status_code
        == 200
    )
    new_task(client, tenant, converted["id"], expect=409)
    new_task(client, tenant, lost["id"], expect=409)


def test_complete_writes_the_timeline_and_closes_the_task(client, tenant):
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"])
    done = client.post(
        f"/api/leads/tasks/{task['id']}/complete",
        json={"notes": "Left a voicemail"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert done.status_code == 200
    assert (
        done.json["status"] == "COMPLETED"
        and done.json["completed_by"] == tenant.users["treatment_coordinator"].id
    )
    timeline = client.get(f"/api/leads/{lead['id']}/activities", headers=tenant.headers()).json
    assert timeline[0]["type"] == "TASK_COMPLETED" and timeline[0]["notes"] == "Left a voicemail"
    again = client.post(f"/api/leads/tasks/{task['id']}/complete", json={}, headers=tenant.headers())
    assert again.status_code == 409
    assert client.post(f"/api/leads/tasks/{task['id']}/cancel", headers=tenant.headers()).status_code == 409


def test_snooze_by_minutes_or_until(client, tenant):
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"])
    later = client.post(
        f"/api/leads/tasks/{task['id']}/snooze", json={"minutes": 120}, headers=tenant.headers()
    )
    assert later.status_code == 200
    moved_to = datetime.fromisoformat(later.json["due_at"])
    assert abs((moved_to - in_minutes(120)).total_seconds()) < 60
    until = iso(in_minutes(24 * 60))
    moved = client.post(
        f"/api/leads/tasks/{task['id']}/snooze", json={"until": until}, headers=tenant.headers()
    )
    assert moved.status_code == 200 and moved.json["due_at"][:16] == until[:16]
    for body in ({}, {"minutes": 5, "until": until}, {"minutes": 0}, {"until": iso(in_minutes(-5))}):
        assert (
            client.post(
                f"/api/leads/tasks/{task['id']}/snooze", json=body, headers=tenant.headers()
            ).status_code
            == 422
        ), body


def test_update_with_stale_etag_is_412(client, tenant):
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"])
    etag = client.get(f"/api/leads/tasks/{task['id']}", headers=tenant.headers()).headers["ETag"]
    ok = client.put(
        f"/api/leads/tasks/{task['id']}",
        json={"priority": "HIGH"},
        headers={**tenant.headers(), "If-Match": etag},
    )
    assert ok.status_code == 200 and ok.json["priority"] == "HIGH"
    stale = client.put(
        f"/api/leads/tasks/{task['id']}",
        json={"priority": "LOW"},
        headers={**tenant.headers(), "If-Match": etag},
    )
    assert stale.status_code == 412


def test_my_tasks_sorted_by_due_then_priority_and_filtered(client, tenant):
    lead = lead_for(client, tenant)
    due = in_minutes(90)
    low = new_task(client, tenant, lead["id"], title="low", due_at=iso(due), priority="LOW")
    urgent = new_task(client, tenant, lead["id"], title="urgent", due_at=iso(due), priority="URGENT")
    early = new_task(client, tenant, lead["id"], title="early", due_at=iso(in_minutes(30)))
    past = new_task(client, tenant, lead["id"], title="past", due_at=iso(in_minutes(-30)))
    other = new_task(
        client, tenant, lead["id"], title="not mine", assigned_to_id=tenant.users["clinic_admin"].id
    )
    headers = tenant.headers("treatment_coordinator")
    mine = client.get("/api/leads/tasks/my-tasks", headers=headers).json
    assert [t["id"] for t in mine] == [past["id"], early["id"], urgent["id"], low["id"]]
    overdue = client.get("/api/leads/tasks/my-tasks?overdue=true", headers=headers).json
    assert [t["id"] for t in overdue] == [past["id"]]
    window = client.get(
        f"/api/leads/tasks/my-tasks?due_from={iso(in_minutes(60))}".replace("+", "%2B"), headers=headers
    ).json
    assert [t["id"] for t in window] == [urgent["id"], low["id"]]
    # The overdue list: own tasks for a coordinator, the clinic's for the admin.
    assert [t["id"] for t in client.get("/api/leads/tasks/overdue", headers=headers).json] == [past["id"]]
    assert other["assigned_to_id"] != tenant.users["treatment_coordinator"].id


def test_templates_and_tasks_from_a_template(client, tenant):
    resp = client.post(
        "/api/task-templates",
        headers=tenant.headers(),
        json={
            "name": "post-consult",
            "title": "Follow up after consultation",
            "type": "FOLLOW_UP",
            "priority": "HIGH",
            "due_offset_minutes": 3 * 24 * 60,
            "description": "Ask about questions",
        },
    )
    assert resp.status_code == 201
    template = resp.json
    assert (
        client.post(
            "/api/task-templates",
            headers=tenant.headers(),
            json={"name": "post-consult", "title": "x", "type": "CALL"},
        ).status_code
        == 409
    )
    assert client.get("/api/task-templates", headers=tenant.headers("front_desk")).status_code == 200
    assert (
        client.post(
            "/api/task-templates",
            headers=tenant.headers("treatment_coordinator"),
            json={"name": "n", "title": "t", "type": "CALL"},
        ).status_code
        == 403
    )
    lead = lead_for(client, tenant)
    task = new_task(
        client, tenant, lead["id"], title=None, type=None, due_at=None, template_id=template["id"]
    )
    assert task["title"] == "Follow up after consultation" and task["priority"] == "HIGH"
    assert task["template_id"] == template["id"] and task["origin"]["kind"] == "template"
    assert "T" in task["due_at"]
    expected = clock.now() + timedelta(days=3)
    assert task["due_at"][:10] == expected.date().isoformat()


def test_recurring_task_makes_the_next_one_until_the_end(client, tenant):
    lead = lead_for(client, tenant)
    first_due = in_minutes(60)
    task = new_task(
        client,
        tenant,
        lead["id"],
        due_at=iso(first_due),
        recurrence="weekly",
        recurrence_until=iso(first_due + timedelta(days=8)),
    )
    client.post(
        f"/api/leads/tasks/{task['id']}/complete", json={}, headers=tenant.headers("treatment_coordinator")
    )
    open_tasks = client.get(f"/api/leads/{lead['id']}/tasks?status=PENDING", headers=tenant.headers()).json
    assert len(open_tasks) == 1 and open_tasks[0]["previous_task_id"] == task["id"]
    client.post(
        f"/api/leads/tasks/{open_tasks[0]['id']}/complete",
        json={},
        headers=tenant.headers("treatment_coordinator"),
    )
    # The third would be 14 days after the first: past the end, so none.
    assert client.get(f"/api/leads/{lead['id']}/tasks?status=PENDING", headers=tenant.headers()).json == []


def test_another_clinics_task_is_404(client, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    lead = lead_for(client, b)
    task = new_task(client, b, lead["id"])
    for method, path, body in [
        ("GET", f"/api/leads/tasks/{task['id']}", None),
        ("PUT", f"/api/leads/tasks/{task['id']}", {"title": "stolen"}),
        ("POST", f"/api/leads/tasks/{task['id']}/complete", {}),
        ("POST", f"/api/leads/tasks/{task['id']}/snooze", {"minutes": 5}),
        ("POST", f"/api/leads/tasks/{task['id']}/cancel", None),
        ("GET", f"/api/leads/{lead['id']}/tasks", None),
        (
            "POST",
            f"/api/leads/{lead['id']}/tasks",
            {"title": "x", "type": "CALL", "due_at": iso(in_minutes(5))},
        ),
    ]:
        resp = client.open(path, method=method, json=body, headers=a.headers())
        assert resp.status_code == 404, (method, path, resp.status_code)
    assert client.get(f"/api/leads/tasks/{task['id']}", headers=b.headers()).json["title"] == "Call back"
