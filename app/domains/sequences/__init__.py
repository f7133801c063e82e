"""Sequences: a series of messages and calls, step by step, that a lead is enrolled in and leaves."""

# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "schemas",
)
