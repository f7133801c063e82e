"""Fault tests against real processes: short horizon, grace and intervals so each runs in seconds.

The same values go to this process's app (it schedules, and runs the sweeps in a thread where a test
does not start real beats) and, as FOLLOWUP_* variables, to the worker and beat processes.
"""

from __future__ import annotations

import pytest

import tests.reliability.handlers  # noqa: F401 - the test job kinds, in this process too
from app import create_app
from app.devtools.sweeping import sweeping  # noqa: F401 - the tests import it from here
from tests.brokers import Broker, rabbitmq_vhost
from tests.conftest import test_settings
from tests.requirements import need_rabbitmq

FAST = {
    "schedule_horizon_seconds": 5.0,
    "promote_interval": 1.0,
    "redispatch_grace_seconds": 2.0,
    "redispatch_interval": 1.0,
    "job_retry_base_seconds": 0.2,
    "job_max_attempts": 3,
}
WORKER_ENV = {f"FOLLOWUP_{name.upper()}": str(value) for name, value in FAST.items()} | {
    "FOLLOWUP_PLUGINS": "tests.reliability.handlers",
}


@pytest.fixture
def fast(app, monkeypatch):
    """This process's settings, made as short as the workers' (restored after the test)."""
    settings = app.config["SETTINGS"]
    for name, value in FAST.items():
        monkeypatch.setattr(settings, name, value)
    return settings


@pytest.fixture(scope="session")
def rabbitmq_url():
    """A virtual host of this run's own on the machine's RabbitMQ (tests/brokers.py)."""
    need_rabbitmq()
    with rabbitmq_vhost() as url:
        yield url


@pytest.fixture(scope="session")
def rabbitmq_app(migrated_database, redis_url, rabbitmq_url):
    """The app with RabbitMQ as its broker (CELERY_BROKER_URL=amqp://...); Redis for the rest."""
    return create_app(test_settings(migrated_database, redis_url, broker_url=rabbitmq_url))


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request, app, monkeypatch):
    """The test runs once per broker, with the fast settings, on the app that publishes to it."""
    flask_app = app if request.param == "redis" else request.getfixturevalue("rabbitmq_app")
    settings = flask_app.config["SETTINGS"]
    for name, value in FAST.items():
        monkeypatch.setattr(settings, name, value)
    chosen = Broker(request.param, flask_app)
    yield chosen
    if chosen.name == "rabbitmq":
        chosen.purge()  # the next test starts from empty queues, as FLUSHDB gives the Redis runs
