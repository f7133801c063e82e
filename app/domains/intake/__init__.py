"""Intake: how leads come in (staff and integrators through the API and its bulk import, websites
through signed web forms, families by SMS, email, phone or Instagram: inbound/, instagram/)."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "schemas",
    "imports",
    "inbound.messages",
    "inbound.sendgrid",
)
