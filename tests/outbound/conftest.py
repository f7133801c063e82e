"""Fixtures of the outbound tests."""

from __future__ import annotations

import pytest

from tests.outbound.fakes import smtp_server
from tests.outbound.kit import FAST_DELIVERY, smtp_settings, use


@pytest.fixture
def mailbox(app, monkeypatch):
    """A local SMTP relay (aiosmtpd) the app sends to, with fast retries."""
    settings = app.config["SETTINGS"]
    with smtp_server() as (server, port):
        use(monkeypatch, settings, **FAST_DELIVERY, **smtp_settings(port))
        yield server
