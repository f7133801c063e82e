"""Pipeline stages per clinic; moving leads through them, conversion and loss."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "events",
    "schemas",
    "rules",
)
