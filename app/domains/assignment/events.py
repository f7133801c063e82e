"""Assignment's event: a lead got an owner, or another one (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event


@dataclass(frozen=True)
class LeadAssigned(Event):
    """A lead's owner changed (a new lead's first owner too), from whom, to whom and why."""

    NAME = "lead.assigned"
    lead_id: int
    from_user_id: int | None
    to_user_id: int | None
    reason: str
