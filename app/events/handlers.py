"""The events domain's registration: processing the outbox is a ledger job kind."""

from app.events import consumers
from app.scheduling import registry

# Drained: under load, one delivery processes the events of many transactions (a Celery message per
# new lead cost more than processing its events).
registry.register(consumers.PROCESS_KIND, consumers.process_events, queue="realtime", drain=True)
