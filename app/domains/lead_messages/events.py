"""The outreach pause's event: a clinic resumed its messages early (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event, stored_as


@dataclass(frozen=True)
class OutreachResumed(Event):
    """A clinic's outreach pause ended early: the steps it held go now (automation/held.py). `from`
    and `until`: the window the pause had."""

    NAME = "clinic.outreach_resumed"
    SUBJECT = "clinic"
    paused_from: str = stored_as("from")
    until: str | None = None
