"""Stale leads: over the stage's max_days_in_stage → one lead.stale event per stay, however often swept."""

from datetime import timedelta

import sqlalchemy as sa

from app import clock
from app.events.models import DomainEvent
from app.leads.models import Lead
from app.pipeline.staleness import find_stale_leads
from app.scheduling.models import ScheduledJob
from tests.leadkit import create_lead
from tests.tasks.taskkit import run_at


def test_a_lead_over_its_stage_limit_is_flagged_once_per_stay(app, client, tenant):
    db = app.extensions["followup.db"]
    stale = create_lead(client, tenant, phone="+14155550101")
    fresh = create_lead(client, tenant, phone="+14155550102", first_name="Fresh")
    for lead in (stale, fresh):
        moved = client.post(
            f"/api/leads/{lead['id']}/stage",
            json={"stage": "pending_decision"},
            headers=tenant.headers("treatment_coordinator"),
        )
        assert moved.status_code == 200, moved.get_json()
    with db.unit_of_work() as session:
        session.execute(
            sa.update(Lead)
            .where(Lead.id == stale["id"])
            .values(stage_entered_at=clock.now() - timedelta(days=8))
        )
    now = clock.now()
    with app.app_context():
        for _ in range(2):  # a second sweep (or a second beat) finds nothing new
            with db.unit_of_work() as session:
                find_stale_leads(session=session, now=now)
    with db.unit_of_work() as session:
        jobs = list(session.scalars(sa.select(ScheduledJob).where(ScheduledJob.kind == "lead.flag_stale")))
    assert [j.subject_id for j in jobs] == [stale["id"]]
    assert run_at(app, jobs[0], now) == "done"
    with db.unit_of_work() as session:
        events = list(session.scalars(sa.select(DomainEvent).where(DomainEvent.type == "lead.stale")))
    assert [(e.subject_id, e.payload["stage"], e.payload["days_in_stage"]) for e in events] == [
        (stale["id"], "pending_decision", 8)
    ]
