"""Helpers of the outreach tests: clinics at a chosen local hour, sequences, steps, jobs, signed inbound."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from app.domains.automation.models import AutomationRule, AutomationStep, SequenceEnrollment
from app.domains.outbound.models import Notification
from app.platform import clock
from app.platform.app_db import get_db
from app.platform.events.consumers import PROCESS_KINDS
from app.platform.scheduling.models import ScheduledJob
from app.platform.scheduling.runner import run_job
from tests.leadkit import create_lead, post_signed
from tests.outbound.kit import assign_sms_senders

ALWAYS_OPEN = {day: ["00:00", "24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def zone_at_local_hour(hour: int, now: datetime | None = None) -> str:
    """An Etc/GMT zone whose local time is `hour`:xx right now: tests of quiet hours need no fake clock."""
    utc_hour = (now or clock.now()).astimezone(UTC).hour
    offset = (hour - utc_hour) % 24
    if offset > 12:
        offset -= 24
    # Etc/GMT's sign is POSIX-inverted: Etc/GMT-3 is UTC+3.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def configure_clinic(client, tenant, **settings) -> None:
    """Open all day (so business-time delays are plain time) in a zone where it is now midday; an SMS
    number or Messaging Service it names is assigned to it by the operator first."""
    assign_sms_senders(
        tenant, *(settings[k] for k in ("sms_number", "sms_messaging_service_sid") if settings.get(k))
    )
    body = {"timezone": zone_at_local_hour(12), "business_hours": ALWAYS_OPEN}
    if settings:
        body["settings"] = settings
    resp = client.put("/api/clinic", json=body, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()


def lead_with(client, tenant, **fields) -> dict:
    return create_lead(client, tenant, role="clinic_admin", email="jane@example.com", **fields)


def make_sequence(client, tenant, steps: list[dict], name: str = "Nurture", expect: int = 201) -> dict:
    resp = client.post("/api/sequences", json={"name": name, "steps": steps}, headers=tenant.headers())
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def sms(body: str = "Hi {{ first_name }}, any questions?", amount: int = 0, unit: str = "minutes") -> dict:
    return {"delay": {"amount": amount, "unit": unit}, "channel": "sms", "body": body}


def email(amount: int = 0, unit: str = "minutes") -> dict:
    return {
        "delay": {"amount": amount, "unit": unit},
        "channel": "email",
        "subject": "Your smile at {{ clinic_name }}",
        "body": "Hi {{ first_name }}, we would love to see you.",
    }


def call(amount: int = 0, unit: str = "minutes", title: str = "Call {{ first_name }}") -> dict:
    return {"delay": {"amount": amount, "unit": unit}, "channel": "call", "title": title}


def enroll(
    client, tenant, lead_id: int, sequence_id: int, expect: int = 201, role: str = "treatment_coordinator"
):
    resp = client.post(
        f"/api/leads/{lead_id}/enrollments", json={"sequence_id": sequence_id}, headers=tenant.headers(role)
    )
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def enrollments(client, tenant, lead_id: int) -> list[dict]:
    resp = client.get(f"/api/leads/{lead_id}/enrollments", headers=tenant.headers("front_desk"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def steps_of(db, lead_id: int) -> list[AutomationStep]:
    """The lead's steps made by sequences and by the tests' own rules (not the clinic's default rules)."""
    with db.unit_of_work() as session:
        stmt = (
            sa.select(AutomationStep)
            .outerjoin(AutomationRule, AutomationRule.id == AutomationStep.rule_id)
            .where(AutomationStep.lead_id == lead_id, AutomationRule.default_key.is_(None))
            .order_by(AutomationStep.id)
        )
        return list(session.scalars(stmt))


def enrollment_row(db, enrollment_id: int) -> SequenceEnrollment:
    with db.unit_of_work() as session:
        return session.get(SequenceEnrollment, enrollment_id)


def messages_to(db, lead_id: int) -> list[Notification]:
    with db.unit_of_work() as session:
        stmt = sa.select(Notification).where(Notification.lead_id == lead_id).order_by(Notification.id)
        return list(session.scalars(stmt))


def open_jobs(db, kind: str) -> list[ScheduledJob]:
    with db.unit_of_work() as session:
        stmt = sa.select(ScheduledJob).where(
            ScheduledJob.kind == kind, ScheduledJob.status.in_(("pending", "dispatched"))
        )
        return list(session.scalars(stmt.order_by(ScheduledJob.due_at, ScheduledJob.id)))


def job_of_step(db, step: AutomationStep) -> ScheduledJob:
    with db.unit_of_work() as session:
        return session.get(ScheduledJob, step.job_id)


def run(app, job: ScheduledJob, now: datetime) -> str:
    """Run one ledger job as a worker would, at the given time."""
    with app.app_context():
        return run_job(db=get_db(), job_id=job.id, now=now)


def process_events(app, db, now: datetime | None = None) -> int:
    """Run every open events processing job (in order) as the workers would; returns how many ran."""
    ran = 0
    while jobs := [job for kind in PROCESS_KINDS for job in open_jobs(db, kind)]:
        for job in jobs:
            run(app, job, now or clock.now())
            ran += 1
    return ran


def post_inbound(client, clinic, message: dict, **sign_kwargs):
    return post_signed(client, clinic, "/api/capture/inbound", message, "inbound", **sign_kwargs)
