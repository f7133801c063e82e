"""Who owns a lead: manual assignment, automatic policies, out-of-office hand-over."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "events",
    "schemas",
    "queries",
    "staff",
)
