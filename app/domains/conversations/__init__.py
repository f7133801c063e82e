# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = (
    "service",
    "models",
    "schemas",
    "linking",
    "media",
    "outbound_media",
    "threads",
    "whatsapp",
)
