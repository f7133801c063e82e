"""Speed-to-lead (a default rule): a new lead gets an "Initial contact" call task, its coordinator is told.

The business-time cases (a lead on Friday night) are in tests/automation/test_default_rules.py."""

from datetime import datetime

import sqlalchemy as sa

from app.domains.tasks.models import LeadTask
from app.platform import clock
from app.platform.scheduling.models import ScheduledJob
from tests.leadkit import create_lead
from tests.tasks.taskkit import notifications_of, run_at
from tests.workers import subprocess_worker, wait_for

ALWAYS_OPEN = {day: ["00:00", "24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def event_jobs_of(app, lead_id):
    with app.extensions["followup.db"].unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(ScheduledJob).where(
                    ScheduledJob.kind == "events.process",
                    ScheduledJob.subject_type == "lead",
                    ScheduledJob.subject_id == lead_id,
                )
            )
        )


def tasks_of(app, lead_id):
    with app.extensions["followup.db"].unit_of_work() as session:
        return list(session.scalars(sa.select(LeadTask).where(LeadTask.lead_id == lead_id)))


def test_new_lead_gets_one_initial_contact_task_and_its_coordinator_is_told(app, client, tenant):
    client.put("/api/clinic", json={"business_hours": ALWAYS_OPEN}, headers=tenant.headers())
    lead = create_lead(client, tenant)
    [job] = [j for j in event_jobs_of(app, lead["id"]) if j.origin.get("event_type") == "lead.created"]
    assert run_at(app, job, clock.now()) == "done"
    assert run_at(app, job, clock.now()) != "done"  # a second delivery adds nothing
    [task] = tasks_of(app, lead["id"])
    assert task.title == "Initial contact" and task.type == "CALL" and task.origin["kind"] == "automation"
    assert task.assigned_to_id == lead["assigned_to_id"]
    minutes = (task.due_at - datetime.fromisoformat(lead["created_at"])).total_seconds() / 60
    assert 4.9 < minutes < 5.1
    told = notifications_of(app, lead["assigned_to_id"], "new_lead")
    assert len(told) == 1 and told[0].link == f"/api/leads/{lead['id']}"


def test_a_real_worker_creates_the_task_within_seconds(app, client, tenant):
    lead = create_lead(client, tenant)
    with subprocess_worker(app.config["SETTINGS"]):
        wait_for(lambda: tasks_of(app, lead["id"]), timeout=60)
    assert len(tasks_of(app, lead["id"])) == 1
