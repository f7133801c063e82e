"""Automation-test helpers: leads captured at a chosen time, events and steps run at a chosen time."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.automation.models import AutomationStep
from app.domains.intake import service as intake
from app.domains.tasks.models import LeadTask
from app.platform.app_db import get_db
from app.platform.roles import ROLE_PERMISSIONS, Actor, Role
from app.platform.scheduling.models import ScheduledJob
from app.platform.scheduling.runner import run_job

WEEKDAYS_9_TO_5 = {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def actor_of(tenant, role: str = "front_desk") -> Actor:
    user = tenant.users[role]
    return Actor(
        clinic_id=tenant.id, permissions=frozenset(ROLE_PERMISSIONS[Role(role)]), user_id=user.id, role=role
    )


def capture_at(app, tenant, when: datetime, **fields) -> int:
    """Create a lead as if captured at `when` (the service takes the clock as an argument)."""
    data = {"first_name": "Jane", "last_name": "Doe", **fields}
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        made = intake.create_lead(
            session=session, actor=actor_of(tenant), new=intake.NewLead(data=data), now=when
        )
        return made.lead.id


OPEN = ("pending", "dispatched")  # dispatched: published to Redis after commit, not yet run


def jobs(app, lead_id: int, kind: str, statuses: tuple[str, ...] | None = OPEN) -> list[ScheduledJob]:
    with app.extensions["followup.db"].unit_of_work() as session:
        stmt = sa.select(ScheduledJob).where(
            ScheduledJob.kind == kind, ScheduledJob.subject_type == "lead", ScheduledJob.subject_id == lead_id
        )
        if statuses:
            stmt = stmt.where(ScheduledJob.status.in_(statuses))
        return list(session.scalars(stmt.order_by(ScheduledJob.id)))


def run_events(app, lead_id: int, now: datetime) -> int:
    """Process the lead's pending events as the worker would, at `now`, then the re-scoring and the
    monthly recount they queued (background jobs of their own); returns how many events jobs ran."""
    ran = 0
    with app.app_context():
        for job in jobs(app, lead_id, "events.process"):
            assert run_job(db=get_db(), job_id=job.id, now=now) == "done"
            ran += 1
        for job in [*jobs(app, lead_id, "intelligence.rescore"), *jobs(app, lead_id, "analytics.recount")]:
            # Due a moment after the events (settings.background_delay_seconds): run when it is due.
            # "skipped": a worker the test ran before (still finishing its drain) holds or ran it.
            assert run_job(db=get_db(), job_id=job.id, now=max(now, job.due_at)) in ("done", "skipped")
    return ran


def run_due_steps(app, lead_id: int, now: datetime) -> int:
    """Run the lead's automation.step jobs due by `now`."""
    ran = 0
    with app.app_context():
        for job in jobs(app, lead_id, "automation.step"):
            if job.due_at <= now:
                assert run_job(db=get_db(), job_id=job.id, now=now) == "done"
                ran += 1
    return ran


def steps_of(app, lead_id: int) -> list[AutomationStep]:
    with app.extensions["followup.db"].unit_of_work() as session:
        stmt = sa.select(AutomationStep).where(AutomationStep.lead_id == lead_id)
        return list(session.scalars(stmt.order_by(AutomationStep.id)))


def tasks_of(app, lead_id: int) -> list[LeadTask]:
    with app.extensions["followup.db"].unit_of_work() as session:
        return list(
            session.scalars(sa.select(LeadTask).where(LeadTask.lead_id == lead_id).order_by(LeadTask.id))
        )


def daytime_zone(now: datetime) -> str:
    """A fixed-offset IANA zone where `now` is early afternoon: the contact policy's quiet hours
    (evening and night) never touch a test that runs at the real time."""
    for offset in range(-12, 15):
        if 12 <= (now.hour + offset) % 24 <= 14:
            # Etc/GMT signs are inverted: Etc/GMT-3 is three hours ahead of UTC.
            return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}" if offset else "UTC"
    raise AssertionError("unreachable: some offset puts any hour at midday")


ALWAYS_OPEN = {day: ["00:00", "24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def open_all_day(client, tenant, now: datetime) -> str:
    """Clinic hours that never move a task, in a zone where it is now midday; returns the zone."""
    zone = daytime_zone(now)
    resp = client.put(
        "/api/clinic", json={"timezone": zone, "business_hours": ALWAYS_OPEN}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    return zone


def add_coordinator(client, tenant, email: str) -> int:
    """A second treatment coordinator of the tenant's clinic, made through the API; returns its id."""
    made = client.post(
        "/api/users",
        json={
            "email": email,
            "name": email.split("@")[0],
            "role": "treatment_coordinator",
            "password": "a long enough password",
        },
        headers=tenant.headers(),
    )
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"]
