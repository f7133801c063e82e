"""Outbound webhooks for integrators: subscriptions, signed deliveries through the ledger, history."""
