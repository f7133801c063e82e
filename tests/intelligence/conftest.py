import pytest

from app.intelligence import service


@pytest.fixture(autouse=True)
def fresh_models():
    """Score models are cached per clinic id for a minute; ids restart with every test's tables."""
    service.forget_models()
    yield
    service.forget_models()
