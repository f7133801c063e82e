"""The analytics domain's registrations: its summaries and monthly counts are fed from the outbox.

Registered after automation (app/domains.py HANDLERS order): the reports may lag, the rules may not;
the monthly counts are kept by a background job of their own (off a new lead's path), whose row
locks are taken just before its transaction commits.
"""

from app.analytics import monthly, rollups
from app.events import consumers as events
from app.events import service as event_types
from app.scheduling import registry

events.on(event_types.ACTIVITY_LOGGED, rollups.on_activity_logged)
events.on(event_types.LEAD_STAGE_CHANGED, rollups.on_stage_changed)
events.on(event_types.STAGES_REORDERED, rollups.on_stages_reordered)
# Once per processing, after the summaries above: the leads the events name are recounted by a
# background job, a drainer's batch of them in one pass.
events.after_events(monthly.on_events)
RECOUNT_BATCH = 50
registry.register(
    monthly.RECOUNT_KIND,
    monthly.recount_job,
    queue="bulk",
    drain=True,
    batch=RECOUNT_BATCH,
    derived=True,
    due_later=True,
)
