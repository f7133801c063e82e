"""The booking page's browser tests use the console's: the app on a real HTTP server, Debian's
Chromium by its path (tests/console/conftest.py)."""

from tests.console.conftest import chromium, live_server, page, pytest_runtest_makereport  # noqa: F401
