"""Stale leads: over their stage's `max_days_in_stage`. Found by an hourly sweep, flagged once per stay.

Each find is a job-ledger row keyed by lead and `stage_entered_at`, so a lead is flagged once per
stay in a stage however often the sweep runs (or however many beats run it); the job writes the
`lead.stale` event that rules (a check-in call after 7 days in Pending Decision) react to.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.events import service as events
from app.leads.models import OPEN_STATUSES, Lead
from app.pipeline.models import PipelineStage
from app.scheduling import registry
from app.scheduling import service as scheduling

STALE_KIND = "lead.flag_stale"
BATCH = 1000


def find_stale_leads(*, session: Session, now: datetime) -> int:
    """Schedule a `lead.flag_stale` job for each open lead over its stage's limit (no-op when known)."""
    stages = session.scalars(sa.select(PipelineStage).where(PipelineStage.max_days_in_stage.is_not(None)))
    jobs = []
    for stage in stages:
        cutoff = now - timedelta(days=stage.max_days_in_stage)
        rows = session.execute(
            sa.select(Lead.id, Lead.stage_entered_at).where(
                Lead.clinic_id == stage.clinic_id,
                Lead.pipeline_stage == stage.slug,
                Lead.status.in_(OPEN_STATUSES),
                Lead.deleted_at.is_(None),
                Lead.stage_entered_at < cutoff,
            )
        )
        for lead_id, entered_at in rows:
            jobs.append(
                {
                    "kind": STALE_KIND,
                    "due_at": now,
                    "clinic_id": stage.clinic_id,
                    "subject_type": "lead",
                    "subject_id": lead_id,
                    "payload": {"stage": stage.slug, "max_days": stage.max_days_in_stage},
                    "dedupe_key": f"lead:{lead_id}:stale:{stage.slug}:{entered_at.isoformat()}",
                }
            )
    for start in range(0, len(jobs), BATCH):
        scheduling.schedule_many(session=session, jobs=jobs[start : start + BATCH], now=now)
    return len(jobs)


def flag_stale_lead(*, session: Session, job, now: datetime) -> None:
    """The job: if the lead is still open and in that stage, write its `lead.stale` event."""
    lead = session.get(Lead, job.subject_id)
    stage = job.payload["stage"]
    if lead is None or lead.deleted_at is not None or lead.status not in OPEN_STATUSES:
        return
    if lead.pipeline_stage != stage:
        return
    events.emit(
        session=session,
        clinic_id=lead.clinic_id,
        type=events.LEAD_STALE,
        subject_type="lead",
        subject_id=lead.id,
        now=now,
        payload={
            "lead_id": lead.id,
            "stage": stage,
            "stage_entered_at": lead.stage_entered_at.isoformat(),
            "days_in_stage": (now - lead.stage_entered_at).days,
            "max_days_in_stage": job.payload["max_days"],
        },
    )


registry.register(STALE_KIND, flag_stale_lead, queue="realtime")
