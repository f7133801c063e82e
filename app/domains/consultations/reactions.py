"""What a family's replies do: a text of C or YES confirms their next consultation, R asks for
another time (what a consultation's own events end is app/domains/automation/consultation_steps.py)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.domains.consultations import rules
from app.domains.consultations.models import Consultation, ConsultationStatus
from app.domains.consultations.service import audit_change
from app.domains.leads.models import Lead
from app.domains.tasks import creation as task_creation
from app.platform.db import UnitOfWork
from app.platform.events.types import Delivered
from app.platform.roles import Actor

if TYPE_CHECKING:
    from app.domains.activities.events import ActivityLogged


def on_reply(*, session: UnitOfWork, event: Delivered[ActivityLogged], now: datetime) -> str | None:
    """Event consumer of activity.logged: a family's text of C or YES confirms their next scheduled
    consultation; R asks for another time and makes a call task for the coordinator. Returns what it
    did (None: not such a reply, or no consultation to answer)."""
    logged = event.data
    if logged.type != ActivityType.SMS or logged.direction != ActivityDirection.INBOUND:
        return None
    activity = session.get(LeadActivity, logged.activity_id)
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
