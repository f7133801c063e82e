"""What the processes tell their operators: Prometheus metrics, OpenTelemetry traces, JSON log lines.

It imports no domain, so any layer may record through it (the ledger records job outcomes, the web
tier request latency). `app/domains/ops` reads the database for the scrape-time figures and serves /metrics.
"""
