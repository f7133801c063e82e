# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "schemas",
    "executors.outreach",
    "language.context",
    "language.validation",
    "orphans",
    "queries",
    "rules",
    "stats",
    "steps",
)
