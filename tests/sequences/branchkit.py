"""Helpers of the branching tests: a two-path sequence, engagement as the tracking emits it, waits."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.automation.models import AutomationStep
from app.domains.leads.models import Lead
from app.domains.tasks.models import LeadTask
from app.platform import clock
from app.platform.events import service as events
from tests.automation.outreachkit import call, email, make_sequence, sms


def two_path_steps(timeout_days: int = 2) -> list[dict]:
    """Email, then wait up to `timeout_days` for a click: clicked -> an SMS; not -> a call task."""
    return [
        {
            **email(),
            "key": "intro",
            "wait": {"for": ["link_clicked"], "timeout": {"amount": timeout_days, "unit": "days"}},
            "on": {"link_clicked": "text", "timeout": "call"},
        },
        {**sms("Glad you had a look, {{ first_name }}!"), "key": "text", "next": "end"},
        {**call(title="Call {{ first_name }}: no click"), "key": "call"},
    ]


def two_path_sequence(client, tenant, name: str = "Branches") -> dict:
    return make_sequence(client, tenant, two_path_steps(), name=name)


def emit_engagement(db, lead_id: int, event_type: type, payload: dict) -> None:
    """An engagement event written as the tracking writes it: through the events service, about the lead."""
    with db.unit_of_work() as session:
        emit_engagement_in(session, lead_id, event_type, payload)


def emit_engagement_in(session, lead_id: int, event_type: type, payload: dict) -> None:
    """The same, inside a unit of work the caller commits (with other writes of its own)."""
    events.emit(
        session=session,
        event=event_type(lead_id=lead_id, **payload),
        subject=events.Subject.lead(session.get(Lead, lead_id)),
        now=clock.now(),
    )


def waits_of(db, lead_id: int) -> list[AutomationStep]:
    with db.unit_of_work() as session:
        stmt = sa.select(AutomationStep).where(
            AutomationStep.lead_id == lead_id, AutomationStep.action_type == "sequence_wait"
        )
        return list(session.scalars(stmt.order_by(AutomationStep.id)))


def call_tasks_of(db, lead_id: int, step_key: str = "call") -> list[LeadTask]:
    """The call tasks the lead's sequence step `step_key` made (each run of it: a loop may run it again)."""
    with db.unit_of_work() as session:
        made_by = [
            f"automation-step:{step.id}"
            for step in session.scalars(
                sa.select(AutomationStep).where(
                    AutomationStep.lead_id == lead_id, AutomationStep.action_type == "sequence_step"
                )
            )
            if step.action.get("key") == step_key
        ]
        stmt = sa.select(LeadTask).where(LeadTask.lead_id == lead_id, LeadTask.dedupe_key.in_(made_by))
        return list(session.scalars(stmt))
