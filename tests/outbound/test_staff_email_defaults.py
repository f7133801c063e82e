"""Email on by default for staff reminders, overdue notices and escalations (issue 14 item 5).

The spec (seeds 000/001) promises reminders "in-app and email": a coordinator who never opened the
preferences gets the email; one who turned it off does not. Through the API with a real in-process
worker (celery.contrib.testing's start_worker on the real Redis) and a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

from datetime import timedelta

from app.domains.outbound import rules
from tests.tasks.taskkit import in_minutes, iso, jobs_of_task, lead_for, notifications_of
from tests.tasks.test_tasks_api import new_task
from tests.workers import thread_worker, wait_for


def mail_to(server, address: str) -> list:
    return [m for m in list(server.messages) if m["To"] == address]


def test_defaults_are_email_for_reminders_overdue_and_escalations_only():
    for kind in ("reminder", "overdue", "escalation"):
        assert rules.channels_for(kind, None) == ["in_app", "email"]
    for kind in ("new_lead", "new_task"):
        assert rules.channels_for(kind, None) == ["in_app"]
    assert rules.channels_for("reminder", {"reminder": ["in_app"]}) == ["in_app"]  # turned off


def test_a_reminder_reaches_the_coordinators_inbox_by_default(app, client, tenant, mailbox):
    coordinator = tenant.users["treatment_coordinator"]
    lead = lead_for(client, tenant)
    with thread_worker(app):
        # Due 15 minutes and 2 seconds from now: its reminder (15 minutes before) is due in 2 s,
        # and the worker runs it then (dispatched with that ETA after the task is committed).
        task = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(15) + timedelta(seconds=2)))
        assert len(jobs_of_task(app, task["id"], "task.reminder")) == 1
        wait_for(lambda: mail_to(mailbox, coordinator.email), timeout=60)
    [mail] = mail_to(mailbox, coordinator.email)
    assert "Call back" in mail["Subject"]
    assert len(notifications_of(app, coordinator.id, "reminder")) == 1  # and in-app


def test_an_escalation_reaches_the_admins_inbox_unless_they_turned_email_off(
    app, client, tenant, make_tenant, mailbox
):
    # The clinic's escalation_hours (0.25) makes a task an hour overdue due for escalation now: the
    # worker runs it as soon as the task's jobs are dispatched.
    quiet = make_tenant("Quiet clinic")
    for clinic, opted_out in ((tenant, False), (quiet, True)):
        resp = client.put(
            "/api/clinic", json={"settings": {"escalation_hours": 0.25}}, headers=clinic.headers()
        )
        assert resp.status_code == 200, resp.get_json()
        if opted_out:
            prefs = client.put(
                "/api/me/notification-preferences",
                json={"channels": {"escalation": ["in_app"]}},
                headers=clinic.headers("clinic_admin"),
            )
            assert prefs.status_code == 200 and prefs.get_json()["channels"]["escalation"] == ["in_app"]
    with thread_worker(app):
        tasks = {}
        for clinic in (tenant, quiet):
            lead = lead_for(client, clinic)
            tasks[clinic.id] = new_task(client, clinic, lead["id"], due_at=iso(in_minutes(-60)))
        admin, quiet_admin = tenant.users["clinic_admin"], quiet.users["clinic_admin"]
        wait_for(lambda: mail_to(mailbox, admin.email), timeout=60)
        wait_for(lambda: notifications_of(app, quiet_admin.id, "escalation"), timeout=60)
    [mail] = mail_to(mailbox, admin.email)
    assert "Overdue" in mail["Subject"]
    assert mail_to(mailbox, quiet_admin.email) == []
    assert notifications_of(app, quiet_admin.id, "escalation", channel="email") == []
