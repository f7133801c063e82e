"""Seed a clinic's database with a generated history (bench/intelligence/history.py), seeded."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.intelligence import service
from app.domains.leads.models import Lead, LeadSource, LeadStatus
from bench.intelligence.history import BUSINESS_HOURS, TIMEZONE, generate

HISTORY_START = date(2025, 1, 1)
HISTORY_MONTHS = 18
# The day after the history ends: its nightly run sees 18 months of leads, the last 90 days immature.
NIGHT = datetime(2026, 7, 2, 6, 0, tzinfo=UTC)


def configure_clinic(client, tenant, **settings) -> None:
    body = {"timezone": TIMEZONE, "business_hours": BUSINESS_HOURS}
    if settings:
        body["settings"] = settings
    resp = client.put("/api/clinic", json=body, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()


def seed_history(app, tenant, *, seed: int = 19, leads: int = 500, owner_role: str = "treatment_coordinator"):
    """The generated history as rows of the tenant's clinic; returns (history, {index: lead id})."""
    history = generate(seed=seed, leads=leads, start=HISTORY_START, months=HISTORY_MONTHS)
    owner = tenant.users[owner_role].id
    ids = {}
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        sources = dict(
            session.execute(
                sa.select(LeadSource.category, LeadSource.id).where(LeadSource.clinic_id == tenant.id)
            ).all()
        )
        for synthetic in history.leads:
            lead = _lead_row(tenant.id, owner, sources, synthetic)
            session.add(lead)
            session.flush()
            ids[synthetic.index] = lead.id
            session.add_all(_activity_rows(tenant.id, lead.id, synthetic))
    return history, ids


def _lead_row(clinic_id: int, owner: int, sources: dict, synthetic) -> Lead:
    stage, entered = synthetic.stages[-1]
    status = LeadStatus.ACTIVE
    if synthetic.converted_at is not None and synthetic.converted_at < NIGHT:
        status, stage, entered = LeadStatus.CONVERTED, "treatment_accepted", synthetic.converted_at
    elif synthetic.lost_at is not None and synthetic.lost_at < NIGHT:
        status, stage, entered = LeadStatus.LOST, "lost", synthetic.lost_at
    return Lead(
        clinic_id=clinic_id,
        status=status,
        pipeline_stage=stage,
        stage_entered_at=entered,
        first_name=f"Synthetic{synthetic.index}",
        last_name="History",
        source_id=sources[synthetic.source_category],
        treatment_interest=list(synthetic.treatments),
        patient_dob=synthetic.patient_dob,
        patient_age_group=synthetic.age_group,  # as the service stores it with the DOB
        assigned_to_id=owner,
        assigned_at=synthetic.created_at,
        converted_at=synthetic.converted_at if status == LeadStatus.CONVERTED else None,
        lost_at=synthetic.lost_at if status == LeadStatus.LOST else None,
        created_at=synthetic.created_at,
        updated_at=synthetic.created_at,
        created_by="test",
        updated_by="test",
    )


def _activity_rows(clinic_id: int, lead_id: int, synthetic) -> list[LeadActivity]:
    common = {"clinic_id": clinic_id, "lead_id": lead_id, "actor": "test"}
    rows = [
        LeadActivity(
            type="PHONE_CALL",
            direction="OUTBOUND",
            outcome="spoke" if call.answered else "no_answer",
            occurred_at=call.at,
            created_at=call.at,
            **common,
        )
        for call in synthetic.calls
        if call.at < NIGHT
    ]
    previous = synthetic.stages[0][0]
    for stage, entered in synthetic.stages[1:]:
        if entered < NIGHT:
            rows.append(
                LeadActivity(
                    type="STAGE_CHANGE",
                    previous_stage=previous,
                    new_stage=stage,
                    occurred_at=entered,
                    created_at=entered,
                    **common,
                )
            )
            previous = stage
    return rows


def run_night(app, tenant, now: datetime = NIGHT) -> dict:
    """The nightly run of one clinic (what the beat task does for each), at `now`."""
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        return service.nightly_for_clinic(session=session, clinic_id=tenant.id, now=now)
