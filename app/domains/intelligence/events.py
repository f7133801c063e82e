"""Intelligence's event: a lead's score moved enough to matter (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event


@dataclass(frozen=True)
class LeadScoreChanged(Event):
    """A lead's conversion score moved by at least the model's step (scoring.SCORE_EVENT_DELTA)."""

    NAME = "lead.score_changed"
    lead_id: int
    score: float
    previous_score: float | None
    model_version: str
