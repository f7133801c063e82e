"""The interaction log of a lead: calls and outcomes, emails, SMS, notes, stage and owner changes."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "events",
    "schemas",
    "rules",
)
