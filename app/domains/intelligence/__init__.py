"""Follow-up intelligence: contact times, lead score, next best action, reply sentiment, forecast."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "events",
    "schemas",
    "contact_times",
)
