"""What one sequence step does: a message (email, SMS, Instagram, WhatsApp) through the contact
policy, or a call task for the lead's coordinator inside business hours (its outcome: outreach.SENT,
SKIPPED or MOVED)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.automation import steps
from app.domains.automation.executors import outreach
from app.domains.automation.models import AutomationStep, StepStatus
from app.domains.business_hours.rules import within_business_hours
from app.domains.lead_messages import templates as message_templates
from app.domains.sequences import distance
from app.domains.sequences.models import Sequence
from app.domains.tasks import creation as task_creation
from app.platform.db import UnitOfWork

if TYPE_CHECKING:
    from app.domains.leads.models import Lead


def carry_out(session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> str:
    action = step.action
    if action["channel"] == "call":
        return _call_task(session, step, lead, now)
    return outreach.send_message(
        session=session,
        step=step,
        lead=lead,
        message=outreach.StepMessage.of(action, action["channel"]),
        now=now,
    )


def _call_task(session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> str:
    """A call step is a task for the lead's coordinator, due inside business hours."""
    if lead.do_not_contact:
        steps.finish(step, StepStatus.SKIPPED, now, reason="do not contact", held_back_by="contact policy")
        return outreach.SKIPPED
    if distance.held_for_the_gap(session=session, step=step, lead=lead, now=now):
        return outreach.MOVED
    sequence_name = session.scalar(sa.select(Sequence.name).where(Sequence.id == step.action["sequence_id"]))
    title = step.action.get("title") or f"{sequence_name}: call (step {step.action['index'] + 1})"
    values = message_templates.merge_values(session=session, lead=lead)
    title, description = message_templates.merge_task_texts(title, step.action.get("body"), values)
    task = task_creation.create_system_task(
        session=session,
        lead=lead,
        now=now,
        task=task_creation.SystemTask(
            title=title,
            type="CALL",
            description=description,
            due_at=within_business_hours(session.get(Clinic, lead.clinic_id), max(step.run_at, now)),
            dedupe_key=f"automation-step:{step.id}",
            origin=steps.origin_of(step),
        ),
    )
    if task is None:
        steps.finish(step, StepStatus.SKIPPED, now, reason="nobody in the clinic can take the task")
        return outreach.SKIPPED
    steps.finish(step, StepStatus.DONE, now, task_id=task.id, due_at=task.due_at.isoformat())
    return outreach.SENT
