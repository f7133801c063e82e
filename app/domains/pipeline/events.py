"""The pipeline's events: a lead moved between stages, won or lost, stale in its stage or quiet,
and a clinic's stages put in a new order (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event, optional


@dataclass(frozen=True)
class LeadStageChanged(Event):
    """A lead entered another stage (by a person, a rule or the board)."""

    NAME = "lead.stage_changed"
    lead_id: int
    previous_stage: str | None
    new_stage: str
    status: str


@dataclass(frozen=True)
class LeadConverted(Event):
    """A lead became a patient: treatment started; the lead is locked from then on."""

    NAME = "lead.converted"
    lead_id: int
    previous_stage: str | None
    converted_at: str


@dataclass(frozen=True)
class LeadLost(Event):
    """A lead was closed as lost, with its reason."""

    NAME = "lead.lost"
    lead_id: int
    previous_stage: str | None
    reason: str | None


@dataclass(frozen=True)
class LeadStale(Event):
    """A lead over its stage's days (`kind` "stage": once per stay) or with no activity for the
    clinic's quiet days (`kind` "quiet": once per quiet spell); each kind carries its own figures."""

    NAME = "lead.stale"
    lead_id: int
    stage: str
    kind: str
    stage_entered_at: str | None = optional()
    days_in_stage: int | None = optional()
    max_days_in_stage: int | None = optional()
    last_activity_at: str | None = optional()
    quiet_days: int | None = optional()


@dataclass(frozen=True)
class StagesReordered(Event):
    """A clinic's stages in their new order (leads' furthest stages follow it in the reports)."""

    NAME = "pipeline.stages_reordered"
    SUBJECT = "clinic"
    order: list[int]
