"""Outbound delivery: the one way a message leaves the system (an email, an SMS, a webhook POST).

A message is a row (pending → sending → done | failed | dead). `service.py` holds the steps every
kind of message shares: claim with a lease, send outside the transaction, record the outcome by
compare-and-set, retry after a backoff or give up, recover sends stuck past their lease. `rules.py`
holds the backoff and give-up rules (pure). Each domain supplies only what differs: how to send and
what to record (app/domains/outbound/worker/attempts.py, app/domains/webhooks/service.py).
"""
