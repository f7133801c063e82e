"""Consultations: booked from the API or a booking system's signed webhook, reminded, confirmed by a
reply, checked in, or caught as no-shows on their own (docs/features/consultations.md)."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "events",
    "schemas",
    "booking.by_family",
    "booking.placement",
    "booking.search",
    "listing",
    "timers",
)
