"""A lead's story in one page: the lead, its timeline, tasks and the why-trail (its automated steps,
said as sentences by workspace/what_next.py). Each part is read by the API's own use case (each read
audited as the API audits it) and dumped by the API's own schema as the reader: the PHI policy
(app/platform/phi_policy.py) leaves out what the reader may not see, here as in the API's answers."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from app.console.wording import Names
from app.domains.activities import schemas as activity_schemas
from app.domains.activities import service as activities
from app.domains.auth import service as auth
from app.domains.automation import schemas as automation_schemas
from app.domains.automation import why_trail
from app.domains.leads import schemas as lead_schemas
from app.domains.leads import service as leads
from app.domains.leads import sources
from app.domains.outbound import service as notifications
from app.domains.pipeline import service as pipeline
from app.domains.tasks import schemas as task_schemas
from app.domains.tasks import service as tasks
from app.platform import phi_policy
from app.platform.api import etag_for
from app.platform.db import PageRequest
from app.platform.roles import Actor

TIMELINE, TASKS = 25, 100
SHOWN_FIRST = ("id", "status", "pipeline_stage", "assigned_to_id", "source_id", "created_at")
SHOWN_APART = ("patients",)


def names_of_clinic(*, session, actor: Actor) -> Names:
    """The clinic's users, sources and stages by id (stages by slug), and its timezone."""
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    return Names(
        zone=ZoneInfo(clinic.timezone),
        users={user.id: user.name for user in auth.list_users(session=session, clinic_id=actor.clinic_id)},
        sources={source.id: source.name for source in sources.list_sources(session=session, actor=actor)},
        stages={
            stage.slug: stage.name
            for stage in pipeline.list_stages(session=session, clinic_id=actor.clinic_id)
        },
    )


def with_holds(session, rows: list[dict]) -> list[dict]:
    """Timeline rows, a message still held back (quiet hours, pacing) with its hold (`held`)."""
    ids = {row["id"]: (row.get("details") or {}).get("notification_id") for row in rows}
    holds = notifications.holds_of(session, [i for i in ids.values() if isinstance(i, int)])
    return [{**row, "held": holds.get(ids[row["id"]])} for row in rows]


def lead_story(*, session, actor: Actor, lead_id: int, now: datetime, timeline_page: int = 1) -> dict:
    """Everything the console shows of one lead, as `actor` may see it; another clinic's is a 404.
    The timeline is one page (newest first) of TIMELINE activities."""
    lead = leads.read_lead(session=session, actor=actor, lead_id=lead_id, now=now)
    timeline, timeline_total = activities.list_activities(
        session=session, actor=actor, lead_id=lead_id, types=None,
        paging=PageRequest(timeline_page, TIMELINE), now=now,
    )  # fmt: skip
    lead_tasks, _ = tasks.list_lead_tasks(
        session=session, actor=actor, lead_id=lead_id, status=None, paging=PageRequest(1, TASKS)
    )
    trail = why_trail.lead_automation(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, now=now)
    with phi_policy.reading_as(actor):
        shown = lead_schemas.LeadOut().dump(lead)
        names = names_of_clinic(session=session, actor=actor)
        listed = set(shown) - set(SHOWN_FIRST) - set(SHOWN_APART)
        return {
            "lead": {k: shown[k] for k in (*SHOWN_FIRST, *sorted(listed)) if k in shown},
            # The patients, said apart from the details (None: the reader may not see them).
            "patients": shown.get("patients"),
            "year": now.astimezone(names.zone).year,  # what a patient's age is counted to
            "name": f"{lead.first_name} {lead.last_name}",
            "phi": phi_policy.may_read_phi(actor),
            "timeline": with_holds(session, activity_schemas.ActivityOut(many=True).dump(timeline)),
            "timeline_total": timeline_total,
            "etag": etag_for(shown, lead_schemas.LeadOut.ETAG_DERIVED),
            "tasks": task_schemas.TaskOut(many=True).dump(lead_tasks),
            "trail": automation_schemas.WhyTrailOut().dump(trail),
            "names": names,
        }
