# What other domains may import (tests/test_architecture.py holds them to it); the rest is its own.
FACE = ("rules", "schemas")
