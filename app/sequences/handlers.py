"""The sequences domain's registrations: its rule executors and the automatic stops."""

from app.automation import steps
from app.events import consumers as events
from app.events import service as event_types
from app.sequences import service as sequences
from app.sequences import stops

# A sequence's step, and a rule's enroll_sequence action, run as automation steps.
steps.register_executor("sequence_step", sequences.run_sequence_step)
steps.register_executor("enroll_sequence", sequences.enroll_from_rule)

# Automatic stops: outreach ends on a reply, a booking, conversion, loss, deletion, opt-out or bounce.
events.on(event_types.ACTIVITY_LOGGED, stops.on_inbound_contact)
events.on(event_types.LEAD_CONVERTED, stops.on_converted)
events.on(event_types.LEAD_LOST, stops.on_lost)
events.on(event_types.LEAD_DELETED, stops.on_deleted)
events.on(event_types.LEAD_UPDATED, stops.on_opt_out)
events.on(event_types.LEAD_STAGE_CHANGED, stops.on_stage_changed)
events.on(event_types.MESSAGE_BOUNCED, stops.on_bounced)
