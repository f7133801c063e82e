"""What a consultation's events end in the automation (event consumers, listed before the rules in
app/handlers.py): the pending steps of its earlier events (an old time's reminders, the follow-up of a
stage move its check-in replaces), and the no-show's call task once the family checked in after all.
The consultations domain tells these by its events."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.automation import steps
from app.domains.automation.models import AutomationRule, AutomationStep, StepStatus
from app.domains.consultations.events import (
    ConsultationAttended,
    ConsultationCancelled,
    ConsultationNoShow,
    ConsultationScheduled,
)
from app.domains.tasks import service as tasks
from app.platform.db import UnitOfWork
from app.platform.events.models import DomainEvent
from app.platform.events.types import Delivered

SUBJECT, LEAD = "consultation", "lead"
SCHEDULED, ATTENDED = ConsultationScheduled.NAME, ConsultationAttended.NAME
NO_SHOW_RULE = "consultation_no_show"  # the default rule whose call task a late check-in ends
# Why the steps of a consultation's earlier events end: a new time replaces them, a cancel ends
# them, a check-in or a no-show ends the reminders still waiting.
ENDED_BECAUSE = {
    SCHEDULED: "the consultation moved to a new time",
    ConsultationCancelled.NAME: "the consultation was cancelled",
    ATTENDED: "the family checked in",
    ConsultationNoShow.NAME: "the consultation was missed",
}


def end_earlier_steps(*, session: UnitOfWork, event: Delivered, now: datetime) -> int:
    """Event consumer of consultation.*: cancel the pending steps the consultation's earlier events
    planned (an old time's reminders), each once; returns how many. (It reads the outbox's rows of
    those events, by id, as a query: their ids are what the steps name.)"""
    lead_id = event.data.lead_id
    if isinstance(event.data, ConsultationScheduled) and not event.data.rescheduled:
        return 0  # a first booking: nothing earlier to end
    if event.subject_type != SUBJECT:
        return 0  # a lead moved to consultation_completed by hand: no consultation's steps to end
    earlier = sa.select(DomainEvent.id).where(
        sa.or_(
            sa.and_(DomainEvent.subject_type == SUBJECT, DomainEvent.subject_id == event.subject_id),
            # A check-in replaces the follow-up of the stage move that came before it: one a visit.
            sa.and_(
                DomainEvent.subject_type == LEAD,
                DomainEvent.subject_id == lead_id,
                DomainEvent.type == ATTENDED,
            )
            if event.type == ATTENDED
            else sa.false(),
        ),
        DomainEvent.id != event.id,
    )
    pending = list(
        session.scalars(
            sa.select(AutomationStep)
            .where(
                AutomationStep.lead_id == lead_id,
                AutomationStep.status == StepStatus.SCHEDULED,
                AutomationStep.event_id.in_(earlier),
            )
            .with_for_update()
        )
    )
    return steps.cancel_steps(session=session, steps=pending, reason=ENDED_BECAUSE[event.type], now=now)


def end_no_show_call(*, session: UnitOfWork, event: Delivered[ConsultationAttended], now: datetime) -> int:
    """Event consumer of consultation.attended: a family checked in after being marked a no-show no
    longer needs the no-show rule's call task (cancelled if still open); returns how many."""
    attended = event.data
    if not attended.after_no_show or not attended.no_show_at:
        return 0
    rule_ids = set(
        session.scalars(
            sa.select(AutomationRule.id).where(
                AutomationRule.clinic_id == event.clinic_id, AutomationRule.default_key == NO_SHOW_RULE
            )
        )
    )
    return tasks.cancel_open_tasks_of_rules(
        session=session,
        lead_id=attended.lead_id,
        rule_ids=rule_ids,
        since=datetime.fromisoformat(attended.no_show_at),
        now=now,
    )
