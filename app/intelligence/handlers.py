"""What runs when something happens: intelligence re-scores a lead on its events and labels replies."""

from __future__ import annotations

from app.events import consumers
from app.events import service as events
from app.intelligence import service

# The events after which a lead's score, next best action or a reply's sentiment may change.
# Not lead.score_changed: the consumer writes that one.
WATCHED = (
    events.LEAD_CREATED,
    events.LEAD_UPDATED,
    events.LEAD_STAGE_CHANGED,
    events.LEAD_ASSIGNED,
    events.LEAD_CONVERTED,
    events.LEAD_LOST,
    events.ACTIVITY_LOGGED,
    events.LEAD_STALE,
    events.TASK_OVERDUE,
)

for event_type in WATCHED:
    consumers.on(event_type, service.on_event)
