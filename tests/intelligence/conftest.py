import pytest

from app.domains.intelligence import scoring


@pytest.fixture(autouse=True)
def fresh_models():
    """Score models are cached per clinic id for a minute; ids restart with every test's tables."""
    scoring.forget_models()
    yield
    scoring.forget_models()
