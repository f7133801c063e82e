# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "schemas",
    "instagram.graph",
    "instagram.models",
    "instagram.service",
    "senders.identity",
    "signing",
    "signing_secrets.guard",
)
