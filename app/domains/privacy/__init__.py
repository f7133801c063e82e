"""Privacy: erasure of a person's data on request or after the clinic's retention period."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = ("models",)
