"""The sequences tests' fixtures: the Graph stand-in (Instagram steps of the follow-up pass)."""

from tests.instagram.conftest import graph  # noqa: F401 (a fixture, found by name)
