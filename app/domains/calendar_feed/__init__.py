"""Each user's open tasks as an iCalendar feed at a secret, rotatable URL."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "schemas",
)
