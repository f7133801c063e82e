"""The analytics domain's registrations: its summaries and monthly counts are fed from the outbox.

Registered after automation (app/domains.py HANDLERS order): the reports may lag, the rules may not;
the monthly counts' row locks are taken last, just before the events' transaction commits.
"""

from app.analytics import monthly, rollups
from app.events import consumers as events
from app.events import service as event_types

events.on(event_types.ACTIVITY_LOGGED, rollups.on_activity_logged)
events.on(event_types.LEAD_STAGE_CHANGED, rollups.on_stage_changed)
events.on(event_types.STAGES_REORDERED, rollups.on_stages_reordered)
# Once per processing, after the summaries above: each lead the events name is recounted.
events.after_events(monthly.on_events)
