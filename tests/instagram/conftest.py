"""The Instagram tests' fixture: the Graph stand-in, and the app pointed at it."""

from __future__ import annotations

import pytest

from app.devtools.instagram import GraphStandIn
from tests.automation.outreachkit import configure_clinic
from tests.instagram.kit import APP_SECRET, VERIFY_TOKEN
from tests.outbound.kit import use


@pytest.fixture
def graph(app, client, tenant, monkeypatch):
    """The stand-in, and the app pointed at it with the Meta app's secret and verify token; the
    clinic open all day where it is now midday (a message is never held for the night, whatever the
    hour the tests run at)."""
    configure_clinic(client, tenant)
    stand_in = GraphStandIn().start()
    use(
        monkeypatch,
        app.config["SETTINGS"],
        instagram_graph_url=stand_in.url,
        instagram_app_secret=APP_SECRET,
        instagram_verify_token=VERIFY_TOKEN,
    )
    yield stand_in
    stand_in.stop()
