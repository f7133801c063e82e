"""What a resume of the clinic's outreach pause lets go: the automated steps the pause held (moved to
its end, or an hour at a time when open-ended) go now instead, each once, through the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.automation import steps
from app.domains.automation.models import AutomationStep, StepStatus
from app.domains.lead_messages import pause as outreach_pause
from app.platform.db import UnitOfWork
from app.platform.events.types import Delivered

if TYPE_CHECKING:
    from app.domains.lead_messages.events import OutreachResumed


def release_held_steps(*, session: UnitOfWork, event: Delivered[OutreachResumed], now: datetime) -> int:
    """Event consumer of clinic.outreach_resumed: every scheduled step of the clinic whose last move
    was the pause's, still due later than now, is moved to now; returns how many."""
    until = event.data.until
    # A held step waits at most until the pause's end (an open-ended one's: an hour past the resume).
    latest = datetime.fromisoformat(until) if until else event.occurred_at + outreach_pause.RECHECK
    candidates = session.scalars(
        sa.select(AutomationStep)
        .where(
            AutomationStep.clinic_id == event.clinic_id,
            AutomationStep.status == StepStatus.SCHEDULED,
            AutomationStep.run_at > now,
            AutomationStep.run_at <= latest,
        )
        .with_for_update()
    )
    released = 0
    for step in list(candidates):
        if not _held_by_pause(step):
            continue  # due later for its own reasons (a delay, quiet hours): left alone
        steps.reschedule(session=session, step=step, run_at=now, note=outreach_pause.RESUMED_NOTE, now=now)
        released += 1
    return released


def _held_by_pause(step: AutomationStep) -> bool:
    """Whether the step waits where the pause put it (its last move is the pause's, to its run time)."""
    moves = (step.result or {}).get("moved") or []
    if not moves:
        return False
    last = moves[-1]
    if last.get("why") != outreach_pause.HELD_NOTE or not last.get("to"):
        return False
    return datetime.fromisoformat(last["to"]) == step.run_at
