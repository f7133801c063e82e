"""The SLA domain's registrations: its warning and breach jobs and the events that start and settle clocks."""

from app.events import consumers as events
from app.events import service as event_types
from app.scheduling import registry
from app.sla import service

registry.register(service.WARN, service.warn, queue="realtime", batch=50)
registry.register(service.BREACH, service.breach, queue="realtime", batch=50)
events.on(event_types.LEAD_CREATED, service.start_clocks)
events.on(event_types.ACTIVITY_LOGGED, service.on_activity)
events.on(event_types.LEAD_LOST, service.on_lost)
events.on(event_types.LEAD_CONVERTED, service.on_converted)
events.on(event_types.LEAD_DELETED, service.on_deleted)
