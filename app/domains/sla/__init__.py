"""SLA clocks: speed to lead and first response, per lead, in the clinic's business time."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "schemas",
)
