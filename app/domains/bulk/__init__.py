"""Bulk operations: a bulk job split into ledger chunks on the bulk queue, polled by the client."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "events",
    "schemas",
)
