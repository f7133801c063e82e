"""A recurring follow-up (`recurring_follow_up`): a task every `every_days` while the lead stays in
`while_stage`, up to `times` occurrences.

Each occurrence is an automation step of its own, run by its ledger job: when one runs it makes its
task (through `create_task`, so the task's fields, assignee and priority are a rule task's) and
records the next occurrence, `every_days` after its own time, under a key that names the series and
the occurrence number, so a redelivered job or a retried transaction never makes two. The series
ends at `times`, when an occurrence finds the lead elsewhere (skipped, with why), or earlier: a
move out of the stage cancels the pending occurrence (`stop_on_stage_change`), a close cancels
every pending step (app/domains/sequences/stops.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.automation import rules, steps
from app.domains.automation.executors import actions
from app.domains.automation.models import AutomationStep, StepStatus
from app.domains.business_hours.rules import calendar_of
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork
from app.platform.events.types import Delivered

if TYPE_CHECKING:
    from app.domains.pipeline.events import LeadStageChanged

ACTION = "recurring_follow_up"


def _as_task_action(action: dict) -> dict:
    """What `create_task` reads: the task fields, re-checked against the stage and the same stay."""
    return {**action, "recheck": {"stages": [action["while_stage"]], "same_stay": True}}


def recurring_follow_up(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    """One occurrence: its task (unless the lead has left the stage: then the series ends, with
    why), then the next occurrence on the ledger, up to `times`."""
    action = step.action
    occurrence = action.get("occurrence", 1)
    actions.make_task(session=session, step=step, lead=lead, action=_as_task_action(action), now=now)
    step.result = {**step.result, "occurrence": occurrence, "of": action["times"]}
    if step.status != StepStatus.DONE or occurrence >= action["times"]:
        return
    _plan_next(session, step, lead, now)


def _plan_next(session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    action, occurrence = step.action, step.action.get("occurrence", 1)
    series = action.get("series") or step.id  # the first occurrence's step names the series
    calendar = calendar_of(session.get(Clinic, lead.clinic_id))
    next_at = rules.after_delay(step.run_at, {"amount": action["every_days"], "unit": "days"}, calendar)
    planned = steps.PlannedStep(
        action={**action, "occurrence": occurrence + 1, "series": series},
        run_at=next_at,
        dedupe_key=f"recurring:{series}:occurrence:{occurrence + 1}",
        origin={
            "rule_id": step.rule_id,
            "rule_version": step.rule_version,
            "event_id": step.event_id,
            "event_type": step.event_type,
        },
        conditions=step.conditions,
        result={"previous_step_id": step.id},
    )
    made = steps.record(session=session, lead=lead, planned=planned, now=now)
    if made is not None:
        steps.plan(session=session, step=made, now=now)
        step.result = {**step.result, "next_step_id": made.id, "next_at": next_at.isoformat()}


def stop_on_stage_change(*, session: UnitOfWork, event: Delivered[LeadStageChanged], now: datetime) -> int:
    """Event consumer of lead.stage_changed: the open lead's pending occurrences of a series tied
    to another stage are cancelled, saying where the lead went; returns how many."""
    lead_id = event.data.lead_id or event.subject_id
    new_stage = event.data.new_stage
    lead = session.get(Lead, lead_id)
    if lead is None or not lead.is_open:
        return 0  # a close ends every pending step with its own reason (sequences/stops.py)
    pending = session.scalars(
        sa.select(AutomationStep)
        .where(
            AutomationStep.lead_id == lead_id,
            AutomationStep.clinic_id == event.clinic_id,
            AutomationStep.action_type == ACTION,
            AutomationStep.status == StepStatus.SCHEDULED,
        )
        .with_for_update()
    )
    cancelled = 0
    for step in pending:
        stage = step.action.get("while_stage")
        if stage != new_stage:
            why = f"the lead left {stage} for {new_stage}: the recurring follow-up ends"
            cancelled += steps.cancel_steps(session=session, steps=[step], reason=why, now=now)
    return cancelled
