"""The webhooks domain's registrations: its job kind and the events it forwards."""

from app.events import consumers as events
from app.scheduling import registry
from app.webhooks import posting, schemas, service

# The POST happens after the claim commits and its outcome is recorded in a unit of work of its own:
# the handler is given the Database. A queue and worker pool of their own: receivers are the
# clinics' servers, so a slow one must not delay anyone's email or SMS (the notifications queue).
registry.register(service.DELIVER_KIND, posting.deliver, queue="webhooks", takes_db=True)
for event_type in schemas.EVENT_TYPES:
    events.on(event_type, service.enqueue_deliveries)
