"""The activities' event: something was logged on a lead's timeline (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event, optional


@dataclass(frozen=True)
class ActivityLogged(Event):
    """An activity on a lead's timeline: a call, a message either way, a note, a stage move. `contact`
    and `attempt` are the one vocabulary's (activities/rules.py), so a rule can say "on an attempt"
    for every channel at once; a stage move also names its stages."""

    NAME = "activity.logged"
    activity_id: int
    lead_id: int
    type: str
    direction: str | None
    outcome: str | None
    occurred_at: str
    system: bool
    contact: bool
    attempt: bool
    previous_stage: str | None = optional()
    new_stage: str | None = optional()
    # A call the family asked to be returned at a time of theirs (ISO): the callback task is due then.
    callback_at: str | None = optional()
