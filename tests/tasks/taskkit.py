"""Task-test helpers: leads with a known coordinator, a task's ledger jobs, running them at a time."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.outbound.models import Notification
from app.platform import clock
from app.platform.app_db import get_db
from app.platform.scheduling.models import ScheduledJob
from app.platform.scheduling.runner import run_job
from tests.leadkit import create_lead


def lead_for(client, tenant, coordinator_role="treatment_coordinator") -> dict:
    lead = create_lead(client, tenant)
    assigned = client.post(
        f"/api/leads/{lead['id']}/assign",
        json={"user_id": tenant.users[coordinator_role].id},
        headers=tenant.headers("clinic_admin"),
    )
    assert assigned.status_code == 200, assigned.get_json()
    return assigned.get_json()


def iso(moment: datetime) -> str:
    return moment.isoformat()


def in_minutes(minutes: float) -> datetime:
    return clock.now() + timedelta(minutes=minutes)


def jobs_of_task(app, task_id: int, kind: str | None = None, status: str | None = None) -> list[ScheduledJob]:
    with app.extensions["followup.db"].unit_of_work() as session:
        stmt = sa.select(ScheduledJob).where(
            ScheduledJob.subject_type == "task", ScheduledJob.subject_id == task_id
        )
        if kind:
            stmt = stmt.where(ScheduledJob.kind == kind)
        if status:
            stmt = stmt.where(ScheduledJob.status == status)
        return list(session.scalars(stmt.order_by(ScheduledJob.due_at, ScheduledJob.id)))


def run_at(app, job: ScheduledJob, now: datetime) -> str:
    """Run one ledger job as the worker would, at the given time."""
    with app.app_context():
        return run_job(db=get_db(), job_id=job.id, now=now)


def notifications_of(app, user_id: int, kind: str | None = None, channel: str | None = "in_app"):
    """The user's notifications (of `kind`), in-app unless another `channel` (None: all) is asked for."""
    with app.extensions["followup.db"].unit_of_work() as session:
        stmt = sa.select(Notification).where(Notification.recipient_user_id == user_id)
        if kind:
            stmt = stmt.where(Notification.kind == kind)
        if channel:
            stmt = stmt.where(Notification.channel == channel)
        return list(session.scalars(stmt.order_by(Notification.id)))
