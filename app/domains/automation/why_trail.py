"""A lead's why-trail: its automated steps, past and pending, with the rule or sequence and the
conditions behind each, and what the contact policy held back."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.automation import attempts
from app.domains.automation.models import (
    AutomationRule,
    AutomationStep,
    SequenceEnrollment,
    StepStatus,
)
from app.domains.leads.models import Lead
from app.domains.tasks.sla import service as sla
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound


def lead_automation(*, session: UnitOfWork, clinic_id: int, lead_id: int, now: datetime) -> dict:
    """A lead's automated steps, past and pending, with their reasons; what the policy held back;
    the attempts since its last contact (those that count toward the break-up)."""
    lead = session.get(Lead, lead_id)
    if lead is None or lead.clinic_id != clinic_id or lead.deleted_at is not None:
        raise NotFound(f"lead {lead_id} not found")
    rows = list(
        session.scalars(
            sa.select(AutomationStep)
            .where(AutomationStep.lead_id == lead.id)
            .order_by(AutomationStep.run_at.desc(), AutomationStep.id.desc())
        )
    )
    names = _rule_names(session, {row.rule_id for row in rows} - {None})
    trail = [_step_view(row, names) for row in rows]
    enrollments = session.scalars(
        sa.select(SequenceEnrollment)
        .where(SequenceEnrollment.lead_id == lead.id)
        .order_by(SequenceEnrollment.enrolled_at.desc())
    )
    tried, _ = attempts.since_last_contact(session, lead.id, now)
    return {
        "lead_id": lead.id,
        "suggested_action": lead.suggested_action,
        "failed_attempts": sum(1 for attempt in tried if attempt.counted),
        "attempts": tried,
        "pending": [s for s in trail if s["status"] == StepStatus.SCHEDULED],
        "past": [s for s in trail if s["status"] != StepStatus.SCHEDULED],
        "held_back": [s for s in trail if s["status"] == StepStatus.SKIPPED or s["result"].get("moved")],
        "enrollments": list(enrollments),
        "sla": sla.clocks_of(session=session, clinic_id=clinic_id, lead_id=lead.id),
    }


def _rule_names(session: UnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        session.execute(
            sa.select(AutomationRule.id, AutomationRule.name).where(AutomationRule.id.in_(ids))
        ).all()
    )


def _step_view(step: AutomationStep, names: dict[int, str]) -> dict:
    return {
        "id": step.id,
        "action_type": step.action_type,
        "status": step.status,
        "run_at": step.run_at,
        "finished_at": step.finished_at,
        "rule": None
        if step.rule_id is None
        else {"id": step.rule_id, "version": step.rule_version, "name": names.get(step.rule_id)},
        "sequence": None
        if step.enrollment_id is None
        else {"enrollment_id": step.enrollment_id, "step": step.sequence_step},
        "event": None if step.event_id is None else {"id": step.event_id, "type": step.event_type},
        "sweep": step.action.get("sweep"),  # a step a beat sweep made (e.g. the orphan sweep)
        "conditions": step.conditions,
        "action": step.action,
        "result": step.result,
        "reason": step.result.get("reason"),
    }
