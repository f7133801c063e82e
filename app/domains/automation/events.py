"""The automation's event: an attempt to reach a lead has failed and counts (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event


@dataclass(frozen=True)
class AttemptFailed(Event):
    """An attempt to reach the lead failed and counts (automation/attempts.py): a call nobody
    answered at once, a text or email once its reply window passed unanswered. `failed_attempts`:
    the failed attempts in a row it makes (the cadence plans the next; three: the break-up)."""

    NAME = "lead.attempt_failed"
    lead_id: int
    activity_id: int
    failed_attempts: int
