"""Capture writes the same facts as the use cases that change a lead later: one builder per fact
(the unit of work, app/platform/db/uow.py, decides how the rows reach the database). A "batch form" twin of a
builder
that drifts (a column left out, a payload key missing) fails here, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.activities.models import ActivityType, LeadActivity
from app.domains.pipeline.models import LeadStageHistory
from app.platform.audit.models import AuditEvent
from app.platform.events.models import DomainEvent
from app.platform.scheduling.models import ScheduledJob
from tests.leadkit import add_user, create_lead, stages


def _filled(row, ignore=()) -> set[str]:
    """The columns of `row` that hold a value."""
    return {c.key for c in sa.inspect(type(row)).columns if getattr(row, c.key) is not None} - set(ignore)


def _keys(value) -> set[str]:
    return set(value or {})


def test_capture_writes_each_fact_as_a_later_change_does(app, client, tenant, db):
    first = add_user(app, tenant)
    second = add_user(app, tenant)
    lead = create_lead(client, tenant, phone="(415) 555-0142")
    owner = lead["assigned_to_id"]
    other = second if owner == first else first
    headers = tenant.headers("clinic_admin")
    resp = client.post(f"/api/leads/{lead['id']}/assign", json={"user_id": other}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    next_stage = stages(client, tenant)[1]["slug"]
    resp = client.post(f"/api/leads/{lead['id']}/stage", json={"stage": next_stage}, headers=headers)
    assert resp.status_code == 200, resp.get_json()

    with db.unit_of_work() as session:
        stays = session.scalars(
            sa.select(LeadStageHistory)
            .where(LeadStageHistory.lead_id == lead["id"])
            .order_by(LeadStageHistory.id)
        ).all()
        owner_changes = session.scalars(
            sa.select(LeadActivity)
            .where(LeadActivity.lead_id == lead["id"], LeadActivity.type == ActivityType.ASSIGNMENT_CHANGE)
            .order_by(LeadActivity.id)
        ).all()
        assigned = session.scalars(
            sa.select(DomainEvent)
            .where(DomainEvent.subject_id == lead["id"], DomainEvent.type == "lead.assigned")
            .order_by(DomainEvent.id)
        ).all()
        logged = session.scalars(
            sa.select(DomainEvent)
            .where(DomainEvent.subject_id == lead["id"], DomainEvent.type == "activity.logged")
            .order_by(DomainEvent.id)
        ).all()
        audits = session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.subject_id == str(lead["id"]), AuditEvent.action == "lead.assign")
            .order_by(AuditEvent.id)
        ).all()
        jobs = session.scalars(
            sa.select(ScheduledJob)
            .where(ScheduledJob.subject_id == lead["id"], ScheduledJob.kind == "events.process")
            .order_by(ScheduledJob.id)
        ).all()

    # The stay capture opened (closed by the move since) and the stay the move opened.
    captured_stay, moved_stay = stays
    assert captured_stay.from_stage is None and moved_stay.from_stage == captured_stay.to_stage
    closing = {"from_stage", "left_at", "stay_seconds"}
    assert _filled(captured_stay, closing) == _filled(moved_stay, closing)
    # The owner's trail: activity, event, audit, as capture wrote them and as a reassignment does.
    captured, reassigned = owner_changes
    assert _filled(captured) == _filled(reassigned)
    assert _keys(captured.details) == _keys(reassigned.details)
    assert captured.details["to_user_id"] == owner and reassigned.details["from_user_id"] == owner
    captured_event, reassigned_event = assigned
    assert _filled(captured_event) == _filled(reassigned_event)
    assert _keys(captured_event.payload) == _keys(reassigned_event.payload)
    assert _keys(logged[0].payload) == _keys(logged[1].payload)  # capture's, the reassignment's
    captured_audit, reassigned_audit = audits
    assert _filled(captured_audit) == _filled(reassigned_audit)
    assert _keys(captured_audit.before) == _keys(reassigned_audit.before)
    assert _keys(captured_audit.after) == _keys(reassigned_audit.after)
    # One processing job per unit of work, built alike: capture's, the reassignment's, the move's.
    assert len(jobs) == 3
    filled = {
        frozenset(_filled(job, {"started_at", "finished_at", "attempts", "last_error"})) for job in jobs
    }
    assert len(filled) == 1, filled
    assert all(_keys(job.payload) == {"event_ids"} and job.payload["event_ids"] for job in jobs)
