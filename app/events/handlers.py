"""The events domain's registration: processing the outbox is a ledger job kind."""

from app.events import consumers
from app.scheduling import registry

# Drained: under load, one delivery processes the events of many transactions (a Celery message per
# new lead cost more than processing its events).
# A drainer behind by many transactions runs up to PROCESS_BATCH of them to a transaction (their
# consumers share the rule set, clinic and lead reads, and their writes go out together); caught up,
# it runs them one by one, so a new lead never waits on a batch.
PROCESS_BATCH = 10
registry.register(
    consumers.PROCESS_KIND, consumers.process_events, queue="realtime", drain=True, batch=PROCESS_BATCH
)
