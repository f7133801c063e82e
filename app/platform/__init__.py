"""The platform: what every domain stands on and that knows no domain (database, unit of work,
event outbox, job ledger, delivery, API plumbing, configuration, telemetry, audit trail, roles)."""
