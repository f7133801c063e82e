"""A lead's story in one page: the lead, its timeline, tasks, pending automated steps and the
why-trail. Protected fields only for a role that may read PHI (app/leads/export.py's rule, the one
the export follows), and then the read is audited as the API's lead read is."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.activities import service as activities
from app.auth.roles import Actor
from app.automation import why_trail
from app.leads import service as leads
from app.leads.export import CONTACT_COLUMNS, PHI_COLUMNS, may_read_phi
from app.scheduling import service as scheduling
from app.scheduling.models import PENDING
from app.tasks import service as tasks

TIMELINE, TASKS, JOBS = 100, 100, 100


def lead_story(*, session: Session, actor: Actor, lead_id: int, now: datetime) -> dict:
    """Everything the console shows of one lead; another clinic's lead is a 404."""
    phi = may_read_phi(actor)
    if phi:
        lead = leads.read_lead(session=session, actor=actor, lead_id=lead_id, now=now)  # audited
    else:
        lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    columns = CONTACT_COLUMNS + PHI_COLUMNS if phi else CONTACT_COLUMNS
    timeline, _ = activities.list_activities(
        session=session, actor=actor, lead_id=lead_id, types=None, page=1, page_size=TIMELINE, now=now
    )
    lead_tasks, _ = tasks.list_lead_tasks(
        session=session, actor=actor, lead_id=lead_id, status=None, page=1, page_size=TASKS
    )
    trail = why_trail.lead_automation(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    waiting = []
    for status in (PENDING, "dispatched"):
        jobs, _ = scheduling.list_jobs(
            session=session, clinic_id=actor.clinic_id, status=status, subject=("lead", lead_id),
            page=1, page_size=JOBS,
        )  # fmt: skip
        waiting += jobs
    return {
        "lead": {"id": lead.id, **{c: getattr(lead, c, None) for c in columns}},
        "name": f"{lead.first_name} {lead.last_name}",
        "phi": phi,
        "timeline": [
            {
                "at": a.occurred_at,
                "type": a.type,
                "direction": a.direction,
                "outcome": a.outcome,
                "notes": a.notes if phi else None,
            }
            for a in timeline
        ],
        "tasks": lead_tasks,
        "jobs": sorted(waiting, key=lambda j: j.due_at),
        "trail": trail,
    }
