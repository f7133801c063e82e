"""Overdue is told: the assignee at once (in-app and email), and an hourly overdue digest to each
user with overdue tasks (at most one an hour, nothing when none). A real worker handles the
task.overdue events; the sweeps run at chosen times."""

from datetime import timedelta

from app.domains.tasks.alerts import digest
from app.domains.tasks.alerts.overdue import mark_overdue
from app.platform import clock
from tests.tasks.taskkit import in_minutes, iso, lead_for, notifications_of
from tests.tasks.test_tasks_api import new_task
from tests.workers import thread_worker, wait_for


def mark(app, now):
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        return mark_overdue(session=session, now=now)


def digests(app, now):
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        return digest.send_overdue_digests(session=session, now=now)


def channels(rows):
    return sorted(n.channel for n in rows)


def test_an_overdue_task_is_told_to_its_assignee_at_once_in_app_and_by_email(app, client, tenant):
    coordinator = tenant.users["treatment_coordinator"].id
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"], role="clinic_admin", due_at=iso(in_minutes(-1)))
    with thread_worker(app):  # the sweep runs now: its task.overdue event is due at once
        assert mark(app, clock.now()) >= 1
        wait_for(lambda: len(notifications_of(app, coordinator, "overdue", channel=None)) == 2, timeout=60)
    told = notifications_of(app, coordinator, "overdue", channel=None)
    assert channels(told) == ["email", "in_app"]
    assert all(n.title == f"Overdue: {task['title']}" for n in told)


def test_a_user_who_turned_email_off_is_told_in_app_only(app, client, tenant):
    coordinator = tenant.users["treatment_coordinator"].id
    headers = tenant.headers("treatment_coordinator")
    prefs = client.put(
        "/api/me/notification-preferences", json={"channels": {"overdue": ["in_app"]}}, headers=headers
    )
    assert prefs.status_code == 200, prefs.get_json()
    lead = lead_for(client, tenant)
    new_task(client, tenant, lead["id"], role="clinic_admin", due_at=iso(in_minutes(-1)))
    with thread_worker(app):
        mark(app, clock.now())
        wait_for(lambda: notifications_of(app, coordinator, "overdue", channel=None), timeout=60)
    assert channels(notifications_of(app, coordinator, "overdue", channel=None)) == ["in_app"]


def test_the_hourly_overdue_digest_goes_once_an_hour_to_users_with_overdue_tasks(app, client, tenant):
    coordinator = tenant.users["treatment_coordinator"].id
    admin = tenant.users["clinic_admin"].id
    lead = lead_for(client, tenant)
    for title in ("Call back", "Send the plan"):
        new_task(client, tenant, lead["id"], role="clinic_admin", title=title, due_at=iso(in_minutes(30)))
    now = clock.now()
    assert digests(app, now) == 0  # nothing overdue: nobody hears anything
    mark(app, now + timedelta(minutes=31))
    assert digests(app, now + timedelta(minutes=32)) == 1
    assert digests(app, now + timedelta(minutes=50)) == 0  # within the hour: no second digest
    assert digests(app, now + timedelta(minutes=93)) == 1
    sent = notifications_of(app, coordinator, "overdue_digest", channel=None)
    assert channels(sent) == ["email", "email", "in_app", "in_app"]
    assert {n.title for n in sent} == {"2 overdue task(s)"}
    assert "Call back" in sent[0].body and "Send the plan" in sent[0].body
    assert notifications_of(app, admin, "overdue_digest") == []  # the admin has no overdue task
