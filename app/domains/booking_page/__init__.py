"""The family's booking page (issue 62): the clinic's public page and a lead's signed link, the
confirmation's link to move or cancel, their settings (embedding origins, the change cut-off)."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "schemas",
)
