"""What runs when something happens: intelligence labels replies at once, and re-scores a lead after
its events in a background job (`intelligence.rescore` on the bulk queue, off a new lead's path)."""

from __future__ import annotations

import functools

from app.events import consumers
from app.events import service as events
from app.intelligence import service
from app.scheduling import registry

# The events after which a lead's score or next best action may change.
# Not lead.score_changed: the re-scoring writes that one.
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

consumers.on(events.ACTIVITY_LOGGED, service.label_reply)
consumers.after_events(functools.partial(service.queue_rescoring, watched=WATCHED))
# Many rows come due at once (one per processing) and each is short: one delivery drains them, up
# to RESCORE_BATCH to a transaction (they share the clinic's scoring view).
RESCORE_BATCH = 50
registry.register(
    service.RESCORE_KIND,
    service.rescore_job,
    queue="bulk",
    drain=True,
    batch=RESCORE_BATCH,
    derived=True,
    due_later=True,
)
