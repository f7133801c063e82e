"""Read-only reports: funnel, sources, coordinators, lost reasons, speed to lead, follow-up effectiveness."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "schemas",
    "queries",
    # What counts as an automated message and a reply (sequences' follow-up figures), and the rates.
    "rollups",
    "figures",
)
