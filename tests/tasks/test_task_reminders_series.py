"""Per-task reminders (own offsets, a writable reminder_at) and recurring series with an interval,
edited one occurrence at a time or as a whole series; over the API, reminders sent by a real worker."""

from datetime import datetime, timedelta

from app.platform import clock
from tests.tasks.taskkit import in_minutes, iso, jobs_of_task, lead_for, notifications_of
from tests.tasks.test_tasks_api import new_task
from tests.workers import thread_worker, wait_for


def put(client, tenant, task_id, expect=200, **body):
    resp = client.put(f"/api/leads/tasks/{task_id}", json=body, headers=tenant.headers())
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def complete(client, tenant, task_id):
    resp = client.post(f"/api/leads/tasks/{task_id}/complete", json={}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()


def pending_reminders(app, task_id) -> list[datetime]:
    jobs = jobs_of_task(app, task_id, "task.reminder")
    return [j.due_at for j in jobs if j.status in ("pending", "dispatched")]


def next_of(client, tenant, lead_id, previous_id) -> dict:
    tasks = client.get(f"/api/leads/{lead_id}/tasks?status=PENDING", headers=tenant.headers()).get_json()
    (nxt,) = [t for t in tasks if t["previous_task_id"] == previous_id]
    return nxt


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_own_offsets_override_the_clinics_and_an_edit_replaces_them(app, client, tenant):
    lead = lead_for(client, tenant)
    own = [120, 30]
    task = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(300)), reminder_offsets_minutes=own)
    due = at(task["due_at"])
    assert task["reminder_offsets_minutes"] == [120, 30]
    assert pending_reminders(app, task["id"]) == [due - timedelta(minutes=120), due - timedelta(minutes=30)]
    assert at(task["reminder_at"]) == due - timedelta(minutes=120)

    changed = put(client, tenant, task["id"], reminder_offsets_minutes=[60])
    assert pending_reminders(app, task["id"]) == [due - timedelta(minutes=60)]
    assert at(changed["reminder_at"]) == due - timedelta(minutes=60)
    # null: back to the clinic's (15 minutes); []: no reminder at all.
    put(client, tenant, task["id"], reminder_offsets_minutes=None)
    assert pending_reminders(app, task["id"]) == [due - timedelta(minutes=15)]
    assert put(client, tenant, task["id"], reminder_offsets_minutes=[])["reminder_at"] is None
    assert pending_reminders(app, task["id"]) == []


def test_a_written_reminder_at_is_sent_then_by_the_worker(app, client, tenant):
    lead = lead_for(client, tenant)
    coordinator = tenant.users["treatment_coordinator"].id
    due = clock.now() + timedelta(seconds=65)
    task = new_task(client, tenant, lead["id"], due_at=iso(due), reminder_offsets_minutes=[])
    assert task["reminder_at"] is None
    before = len(notifications_of(app, coordinator, "reminder"))
    with thread_worker(app):
        changed = put(client, tenant, task["id"], reminder_at=iso(due - timedelta(seconds=62)))
        # Kept as whole minutes before due: one minute here.
        assert changed["reminder_offsets_minutes"] == [1]
        assert at(changed["reminder_at"]) == due - timedelta(minutes=1)
        wait_for(lambda: len(notifications_of(app, coordinator, "reminder")) > before, timeout=60)
    sent = notifications_of(app, coordinator, "reminder")[-1]
    assert task["title"] in sent.title


def test_recurrence_with_an_interval_and_edits_of_one_or_the_series(client, tenant):
    lead = lead_for(client, tenant)
    first = new_task(
        client,
        tenant,
        lead["id"],
        title="Retainer check",
        due_at=iso(in_minutes(60)),
        recurrence="weekly",
        recurrence_interval=2,
    )
    slot = at(first["due_at"])
    # This occurrence only: a new title and a later time; the series keeps both.
    put(client, tenant, first["id"], title="Retainer check (moved)", due_at=iso(slot + timedelta(days=1)))
    complete(client, tenant, first["id"])
    second = next_of(client, tenant, lead["id"], first["id"])
    assert second["title"] == "Retainer check" and at(second["due_at"]) == slot + timedelta(weeks=2)
    assert second["series_id"] == first["id"] and second["recurrence_interval"] == 2

    # The whole series: the new title and priority carry to the next occurrences.
    put(client, tenant, second["id"], apply_to="series", title="Retainer review", priority="HIGH")
    complete(client, tenant, second["id"])
    third = next_of(client, tenant, lead["id"], second["id"])
    assert (third["title"], third["priority"]) == ("Retainer review", "HIGH")
    assert at(third["due_at"]) == slot + timedelta(weeks=4) and third["series_id"] == first["id"]
    # Moving the series moves its cadence.
    moved = at(third["due_at"]) + timedelta(days=3)
    put(client, tenant, third["id"], apply_to="series", due_at=iso(moved))
    complete(client, tenant, third["id"])
    assert at(next_of(client, tenant, lead["id"], third["id"])["due_at"]) == moved + timedelta(weeks=2)


def test_monthly_interval_and_bad_input_is_422(client, tenant):
    lead = lead_for(client, tenant)
    monthly = new_task(
        client,
        tenant,
        lead["id"],
        due_at="2031-01-31T10:00:00+00:00",
        recurrence="monthly",
        recurrence_interval=3,
    )
    complete(client, tenant, monthly["id"])
    # 05:00 in the clinic's New York on 31 January; 05:00 there on 30 April is 09:00Z (daylight time).
    assert at(next_of(client, tenant, lead["id"], monthly["id"])["due_at"]) == at("2031-04-30T09:00:00+00:00")

    plain = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(60)))
    for body, field in (
        ({"reminder_offsets_minutes": [0]}, "reminder_offsets_minutes"),
        ({"reminder_offsets_minutes": list(range(1, 13))}, "reminder_offsets_minutes"),
        ({"reminder_at": iso(in_minutes(90))}, "reminder_at"),  # after due
        ({"reminder_at": iso(in_minutes(-5))}, "reminder_at"),  # past
        ({"apply_to": "series", "title": "x"}, "apply_to"),  # not recurring
        ({"apply_to": "everything"}, "apply_to"),
        ({"recurrence_interval": 0}, "recurrence_interval"),
        ({"recurrence_interval": 2}, "recurrence_interval"),  # no recurrence
    ):
        resp = client.put(f"/api/leads/tasks/{plain['id']}", json=body, headers=tenant.headers())
        assert resp.status_code == 422, (body, resp.get_json())
        assert field in str(resp.get_json()["errors"]), (body, resp.get_json())
    new_task(client, tenant, lead["id"], expect=422, recurrence_interval=2)
