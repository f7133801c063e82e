"""The webhooks domain's registrations: its job kind and the events it forwards."""

from app.events import consumers as events
from app.scheduling import registry
from app.webhooks import schemas, service

registry.register(service.DELIVER_KIND, service.deliver, queue="notifications")
for event_type in schemas.EVENT_TYPES:
    events.on(event_type, service.enqueue_deliveries)
