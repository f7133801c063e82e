"""Stale leads, both senses: over the stage's limit (once per stay) and quiet for the clinic's days
(once per quiet spell), kept on the lead whatever the ledger purges; GET /api/leads?stale=."""

from datetime import timedelta

import sqlalchemy as sa

from app.domains.leads.models import Lead
from app.domains.pipeline.staleness import find_stale_leads
from app.platform import clock
from app.platform.app_db import get_db
from app.platform.events.models import DomainEvent
from app.platform.scheduling import sweeps
from tests.leadkit import create_lead


def sweep(app, now):
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        return find_stale_leads(session=session, now=now)


def stale_events(app, kind):
    with app.extensions["followup.db"].unit_of_work() as session:
        events = session.scalars(
            sa.select(DomainEvent).where(DomainEvent.type == "lead.stale").order_by(DomainEvent.id)
        ).all()
        return [(e.subject_id, e.payload["stage"]) for e in events if e.payload["kind"] == kind]


def age(app, lead_id, **values):
    with app.extensions["followup.db"].unit_of_work() as session:
        session.execute(sa.update(Lead).where(Lead.id == lead_id).values(**values))


def listed(client, tenant, query):
    resp = client.get(f"/api/leads?{query}", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return sorted(lead["id"] for lead in resp.get_json())


def move(client, tenant, lead_id, stage):
    body = {"stage": stage, **({"hesitation_reason": "timing"} if stage == "pending_decision" else {})}
    moved = client.post(
        f"/api/leads/{lead_id}/stage", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert moved.status_code == 200, moved.get_json()


def test_a_lead_over_its_stage_limit_is_flagged_once_per_stay_whatever_the_purge(app, client, tenant):
    stale = create_lead(client, tenant, phone="+14155550101")
    fresh = create_lead(client, tenant, phone="+14155550102", first_name="Fresh")
    for lead in (stale, fresh):
        move(client, tenant, lead["id"], "pending_decision")
    now = clock.now()
    age(app, stale["id"], stage_entered_at=now - timedelta(days=8))
    keep_days = app.config["SETTINGS"].purge_done_after_days
    for day in range(5):  # a sweep a day, and every finished ledger row purged in between
        assert sweep(app, now + timedelta(days=day)) == (1 if day == 0 else 0)
        with app.app_context():
            sweeps.purge_done(db=get_db(), now=now + timedelta(days=day + keep_days + 1))
    assert stale_events(app, "stage") == [(stale["id"], "pending_decision")]
    assert listed(client, tenant, "stale=true") == [stale["id"]]
    assert listed(client, tenant, "stale=false") == [fresh["id"]]

    # A new stay in a stage may be flagged again once it is over that stage's limit.
    move(client, tenant, stale["id"], "treatment_accepted")
    assert listed(client, tenant, "stale=true") == []


def test_a_quiet_lead_is_stale_once_per_quiet_spell(app, client, tenant):
    resp = client.put("/api/clinic", json={"settings": {"stale_after_days": 5}}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    quiet = create_lead(client, tenant, phone="+14155550101")
    busy = create_lead(client, tenant, phone="+14155550102", first_name="Busy")
    now = clock.now()
    assert sweep(app, now + timedelta(days=4)) == 0  # four quiet days: not yet
    note = client.post(
        f"/api/leads/{busy['id']}/activities",
        json={"type": "NOTE", "notes": "spoke at the front desk"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert note.status_code == 201
    # Day 5 of quiet for the first; the second's note (today) started a new spell.
    age(app, busy["id"], last_activity_at=now + timedelta(days=1))
    later = now + timedelta(days=5, minutes=1)
    assert sweep(app, later) == 1
    assert sweep(app, later + timedelta(days=3)) == 1  # the second's spell is now 5 days old
    assert sweep(app, later + timedelta(days=30)) == 0  # each spell flagged once
    assert stale_events(app, "quiet") == [(quiet["id"], "new_lead"), (busy["id"], "new_lead")]
    assert listed(client, tenant, "stale=true") == sorted([quiet["id"], busy["id"]])

    # Any activity ends the spell: the lead is no longer stale, and a new spell may be flagged.
    call = client.post(
        f"/api/leads/{quiet['id']}/activities",
        json={"type": "PHONE_CALL", "direction": "INBOUND", "duration_minutes": 3},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert call.status_code == 201
    assert listed(client, tenant, "stale=true") == [busy["id"]]


def test_automated_messages_do_not_end_a_quiet_spell(app, client, tenant):
    from app.domains.activities import service as activities

    lead = create_lead(client, tenant)
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        row = session.get(Lead, lead["id"])
        activities.record(
            session=session,
            lead=row,
            facts=activities.ActivityFacts(
                type="EMAIL",
                direction="OUTBOUND",
                at=clock.now() + timedelta(days=6),
                notes="Automated email",
            ),
        )
    assert sweep(app, clock.now() + timedelta(days=7, minutes=1)) == 1
