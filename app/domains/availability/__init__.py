"""Availability: consultation types, providers and chairs with their hours, closures, the booking
settings, providers' busy times from their own calendar feeds, and the pure slot arithmetic."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "schemas",
    "rules",
)
