"""Reminders and escalation through the ledger, run at chosen times (the clock is passed in)."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.tasks.models import LeadTask
from tests.tasks.taskkit import in_minutes, iso, jobs_of_task, lead_for, notifications_of, run_at
from tests.tasks.test_tasks_api import new_task


def test_reminder_fires_once_15_minutes_before_due(app, client, tenant):
    lead = lead_for(client, tenant)
    due = in_minutes(60)
    task = new_task(client, tenant, lead["id"], due_at=iso(due))
    [reminder] = jobs_of_task(app, task["id"], "task.reminder")
    assert abs((reminder.due_at - (due - timedelta(minutes=15))).total_seconds()) < 1
    coordinator = tenant.users["treatment_coordinator"].id
    assert run_at(app, reminder, reminder.due_at) == "done"
    assert run_at(app, reminder, reminder.due_at) != "done"  # delivered again: nothing more
    reminders = notifications_of(app, coordinator, "reminder")
    assert len(reminders) == 1 and "15 minutes" in reminders[0].title


def test_clinic_reminder_offsets_and_past_reminders_are_skipped(app, client, tenant):
    resp = client.put(
        "/api/clinic", json={"settings": {"reminder_offsets_minutes": [1440, 15]}}, headers=tenant.headers()
    )
    assert resp.status_code == 200
    lead = lead_for(client, tenant)
    soon = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(60)))
    later = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(3 * 24 * 60)))
    assert [j.payload["offset_minutes"] for j in jobs_of_task(app, soon["id"], "task.reminder")] == [15]
    assert [j.payload["offset_minutes"] for j in jobs_of_task(app, later["id"], "task.reminder")] == [
        1440,
        15,
    ]
    past = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(5)))
    assert jobs_of_task(app, past["id"], "task.reminder") == []


def test_moving_the_due_time_replaces_the_reminder(app, client, tenant):
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(60)))
    [old] = jobs_of_task(app, task["id"], "task.reminder")
    client.post(f"/api/leads/tasks/{task['id']}/snooze", json={"minutes": 180}, headers=tenant.headers())
    assert [j.status for j in jobs_of_task(app, task["id"], "task.reminder")] == ["cancelled", "pending"]
    assert run_at(app, old, old.due_at) != "done"
    new = jobs_of_task(app, task["id"], "task.reminder", status="pending")[0]
    assert run_at(app, new, new.due_at) == "done"
    assert len(notifications_of(app, tenant.users["treatment_coordinator"].id, "reminder")) == 1


def test_complete_and_cancel_cancel_the_timers(app, client, tenant):
    lead = lead_for(client, tenant)
    done = new_task(client, tenant, lead["id"])
    dropped = new_task(client, tenant, lead["id"])
    client.post(f"/api/leads/tasks/{done['id']}/complete", json={}, headers=tenant.headers())
    client.post(f"/api/leads/tasks/{dropped['id']}/cancel", headers=tenant.headers())
    for task in (done, dropped):
        assert {j.status for j in jobs_of_task(app, task["id"])} == {"cancelled"}


def test_escalation_after_24h_without_contact(app, client, tenant):
    lead = lead_for(client, tenant)
    due = in_minutes(30)
    task = new_task(client, tenant, lead["id"], due_at=iso(due))
    [escalation] = jobs_of_task(app, task["id"], "task.escalate")
    assert abs((escalation.due_at - (due + timedelta(hours=24))).total_seconds()) < 1
    assert run_at(app, escalation, escalation.due_at) == "done"
    admin = tenant.users["clinic_admin"].id
    assert len(notifications_of(app, admin, "escalation")) == 1
    escalated = client.get(f"/api/leads/tasks/{task['id']}", headers=tenant.headers()).json
    assert escalated["priority"] == "URGENT" and escalated["escalated_at"]
    audit = client.get(
        f"/api/audit-events?subject=task:{task['id']}&action=task.escalate", headers=tenant.headers()
    ).json
    assert len(audit) == 1
    # At most once: moving the due time later does not escalate it again.
    client.put(
        f"/api/leads/tasks/{task['id']}", json={"due_at": iso(in_minutes(60))}, headers=tenant.headers()
    )
    assert jobs_of_task(app, task["id"], "task.escalate", status="pending") == []


CONTACTS = [
    {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "spoke"},
    {"type": "PHONE_CALL", "direction": "INBOUND"},
    {"type": "SMS", "direction": "INBOUND"},
    {"type": "EMAIL", "direction": "INBOUND"},
    {"type": "IN_PERSON"},
]
ATTEMPTS = [
    {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "voicemail"},
    {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "no_answer"},
    {"type": "EMAIL", "direction": "OUTBOUND"},
    {"type": "SMS", "direction": "OUTBOUND"},
    {"type": "NOTE"},
]


def _escalate_after(app, client, tenant, activity: dict) -> bool:
    """A task an hour overdue, `activity` logged since its due time: whether its escalation fires."""
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(-60)))
    logged = client.post(
        f"/api/leads/{lead['id']}/activities", headers=tenant.headers("treatment_coordinator"), json=activity
    )
    assert logged.status_code == 201, logged.get_json()
    [escalation] = jobs_of_task(app, task["id"], "task.escalate")
    assert run_at(app, escalation, escalation.due_at) == "done"
    with app.extensions["followup.db"].unit_of_work() as session:
        return session.scalar(sa.select(LeadTask.escalated_at).where(LeadTask.id == task["id"])) is not None


@pytest.mark.parametrize("activity", CONTACTS, ids=lambda a: "-".join(map(str, a.values())))
def test_no_escalation_when_the_lead_was_contacted_since_due(app, client, tenant, activity):
    assert not _escalate_after(app, client, tenant, activity)
    assert notifications_of(app, tenant.users["clinic_admin"].id, "escalation") == []


@pytest.mark.parametrize("activity", ATTEMPTS, ids=lambda a: "-".join(map(str, a.values())))
def test_an_attempt_or_a_note_since_due_does_not_stop_the_escalation(app, client, tenant, activity):
    # A voicemail left or an email nobody answered is an attempt, not contact (issue 14 item 1).
    assert _escalate_after(app, client, tenant, activity)


def test_overdue_sweep_marks_open_tasks_past_due(app, client, tenant):
    from app.domains.tasks.alerts.overdue import mark_overdue

    lead = lead_for(client, tenant)
    past = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(-1)))
    future = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(60)))
    # In an app context, as in the worker: each marked task emits task.overdue (a ledger row).
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        assert mark_overdue(session=session, now=in_minutes(0)) == 1
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        assert mark_overdue(session=session, now=in_minutes(0)) == 0  # a second sweep changes nothing
    statuses = {
        t["id"]: t["status"]
        for t in client.get(f"/api/leads/{lead['id']}/tasks", headers=tenant.headers()).json
    }
    assert statuses[past["id"]] == "OVERDUE" and statuses[future["id"]] == "PENDING"
    # Snoozing an overdue task into the future reopens it.
    snoozed = client.post(
        f"/api/leads/tasks/{past['id']}/snooze", json={"minutes": 30}, headers=tenant.headers()
    )
    assert snoozed.json["status"] == "PENDING"


def test_converting_a_lead_cancels_its_open_tasks_and_timers(app, client, tenant):
    from tests.tasks.test_speed_to_lead import event_jobs_of

    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"])
    assert client.post(f"/api/leads/{lead['id']}/convert", headers=tenant.headers()).status_code == 200
    for job in event_jobs_of(app, lead["id"]):
        run_at(app, job, in_minutes(0))
    closed = client.get(f"/api/leads/tasks/{task['id']}", headers=tenant.headers()).json
    assert closed["status"] == "CANCELLED"
    assert {j.status for j in jobs_of_task(app, task["id"])} == {"cancelled"}


def test_bad_automation_settings_are_422_naming_the_field(client, tenant):
    for settings in (
        {"reminder_offsets_minutes": [0]},
        {"reminder_offsets_minutes": "15"},
        {"escalation_hours": -1},
        {"reminder_ofsets_minutes": [15]},
    ):
        resp = client.put("/api/clinic", json={"settings": settings}, headers=tenant.headers())
        assert resp.status_code == 422, settings
        assert "settings" in resp.get_json()["errors"]["json"], settings
