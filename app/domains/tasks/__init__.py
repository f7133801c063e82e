# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "events",
    "schemas",
    "claims",
    "creation",
    "escalation",
    "team",
    "sla.models",
    "sla.schemas",
    "sla.service",
)
