"""What a consultation's events and a family's replies do: the steps of an old time end; a text of
C or YES confirms, R asks for another time."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.domains.automation import steps
from app.domains.automation.models import AutomationStep, StepStatus
from app.domains.consultations import rules
from app.domains.consultations.models import Consultation, ConsultationStatus
from app.domains.consultations.service import ATTENDED, CANCELLED, NO_SHOW, SCHEDULED, SUBJECT, audit_change
from app.domains.leads.models import Lead
from app.domains.tasks import creation as task_creation
from app.platform.db import UnitOfWork
from app.platform.events.models import DomainEvent
from app.platform.roles import Actor

# Why the steps of a consultation's earlier events end: a new time replaces them, a cancel ends
# them, a check-in or a no-show ends the reminders still waiting.
_ENDED_BECAUSE = {
    SCHEDULED: "the consultation moved to a new time",
    CANCELLED: "the consultation was cancelled",
    ATTENDED: "the family checked in",
    NO_SHOW: "the consultation was missed",
}


def end_earlier_steps(*, session: UnitOfWork, event: DomainEvent, now: datetime) -> int:
    """Event consumer of consultation.* (before the rules): cancel the pending steps the
    consultation's earlier events planned (an old time's reminders), each once; returns how many."""
    payload = event.payload or {}
    if event.type == SCHEDULED and not payload.get("rescheduled"):
        return 0  # a first booking: nothing earlier to end
    earlier = sa.select(DomainEvent.id).where(
        DomainEvent.subject_type == SUBJECT,
        DomainEvent.subject_id == event.subject_id,
        DomainEvent.id != event.id,
    )
    pending = list(
        session.scalars(
            sa.select(AutomationStep)
            .where(
                AutomationStep.lead_id == payload.get("lead_id"),
                AutomationStep.status == StepStatus.SCHEDULED,
                AutomationStep.event_id.in_(earlier),
            )
            .with_for_update()
        )
    )
    return steps.cancel_steps(session=session, steps=pending, reason=_ENDED_BECAUSE[event.type], now=now)


def on_reply(*, session: UnitOfWork, event: DomainEvent, now: datetime) -> str | None:
    """Event consumer of activity.logged: a family's text of C or YES confirms their next scheduled
    consultation; R asks for another time and makes a call task for the coordinator. Returns what it
    did (None: not such a reply, or no consultation to answer)."""
    payload = event.payload or {}
    if payload.get("type") != ActivityType.SMS or payload.get("direction") != ActivityDirection.INBOUND:
        return None
    activity = session.get(LeadActivity, payload.get("activity_id"))
    keyword = rules.reply_keyword(activity.notes if activity is not None else None)
    if keyword is None:
        return None
    consultation = session.scalar(
        sa.select(Consultation)
        .where(
            Consultation.lead_id == activity.lead_id,
            Consultation.status == ConsultationStatus.SCHEDULED,
            Consultation.starts_at >= activity.occurred_at,
        )
        .order_by(Consultation.starts_at)
        .limit(1)
        .with_for_update()
    )
    if consultation is None:
        return None
    actor = Actor.engine(consultation.clinic_id, "family_reply")
    if keyword == rules.CONFIRM:
        if consultation.confirmed_at is None:
            consultation.confirmed_at, consultation.updated_at = activity.occurred_at, now
            audit_change(session, consultation, actor, "consultation.confirm", now)
        return keyword
    if consultation.reschedule_requested_at is None:
        consultation.reschedule_requested_at, consultation.updated_at = activity.occurred_at, now
        audit_change(session, consultation, actor, "consultation.reschedule_request", now)
    lead = session.get(Lead, consultation.lead_id)
    task_creation.create_system_task(
        session=session,
        lead=lead,
        now=now,
        task=task_creation.SystemTask(
            title="Reschedule the consultation (the family asked by text)",
            type="CALL",
            priority="HIGH",
            due_at=now,
            dedupe_key=f"consultation:{consultation.id}:reschedule-request:{activity.id}",
            origin={"kind": "consultation", "consultation_id": consultation.id, "activity_id": activity.id},
        ),
    )
    return keyword
