"""Snooze, complete, cancel before due (real worker): the old reminder never fires; the new one once."""

import time
from datetime import timedelta

from app.platform import clock
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.tasks.taskkit import iso, lead_for, notifications_of
from tests.tasks.test_tasks_api import new_task
from tests.workers import subprocess_worker, wait_for


def test_only_the_current_reminder_fires(app, client, tenant, fast):
    assert (
        client.put(
            "/api/clinic", json={"settings": {"reminder_offsets_minutes": [1]}}, headers=tenant.headers()
        ).status_code
        == 200
    )
    lead = lead_for(client, tenant)
    start = clock.now()
    # Each reminder is 1 minute before due: 5 s from now, inside the horizon, so already in Redis.
    due = iso(start + timedelta(seconds=65))
    snoozed = new_task(client, tenant, lead["id"], title="snoozed", due_at=due)
    completed = new_task(client, tenant, lead["id"], title="completed", due_at=due)
    cancelled = new_task(client, tenant, lead["id"], title="cancelled", due_at=due)
    headers = tenant.headers("treatment_coordinator")
    assert (
        client.post(
            f"/api/leads/tasks/{snoozed['id']}/snooze",
            headers=headers,
            json={"until": iso(start + timedelta(seconds=75))},
        ).status_code
        == 200
    )
    assert (
        client.post(f"/api/leads/tasks/{completed['id']}/complete", json={}, headers=headers).status_code
        == 200
    )
    assert client.post(f"/api/leads/tasks/{cancelled['id']}/cancel", headers=headers).status_code == 200

    coordinator = tenant.users["treatment_coordinator"].id
    with subprocess_worker(app.config["SETTINGS"], **WORKER_ENV), sweeping(app):
        wait_for(lambda: notifications_of(app, coordinator, "reminder"), timeout=60)
        time.sleep(3)  # let any stray delivery of the old reminders land, if there were one
    reminders = notifications_of(app, coordinator, "reminder")
    assert [r.link for r in reminders] == [f"/api/leads/tasks/{snoozed['id']}"]
    fired_at = reminders[0].created_at
    # The new reminder (due 15 s after start), not the old one (5 s after start).
    assert fired_at >= start + timedelta(seconds=15)
