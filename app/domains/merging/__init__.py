"""Duplicates to merge or dismiss: two leads staff say are the same family become one (`merge`), or
are never suggested as duplicates of each other again (`dismiss`)."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "events",
    "schemas",
)
