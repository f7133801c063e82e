import pytest


@pytest.fixture(autouse=True)
def fresh_models(wiring):
    """Score models are cached per clinic id for a minute; ids restart with every test's tables."""
    wiring.caches.score_models.clear()
    yield
    wiring.caches.score_models.clear()
