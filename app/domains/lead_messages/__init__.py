# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "models",
    "events",
    "schemas",
    "booking_link",
    "merge_fields",
    "pause",
    "policy",
    "templates",
    "to_lead",
    "unsubscribe",
)
