"""A process about to serve (a gunicorn worker, a Celery pool child) does its one-time work before
its first request or job: on a stack just started, the first leads waited for it (bench/automation,
fresh mode)."""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from app import create_app
from app.console import health
from app.platform.celery_config import QUEUES
from app.platform.db import Database
from app.platform.scheduling.dispatch import Dispatcher
from app.platform.telemetry import gunicorn_config
from tests.brokers import rabbitmq_vhost
from tests.conftest import test_settings
from tests.requirements import need_rabbitmq
from workers import celery_app

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_create_app_settles_the_orm_mappers_so_the_first_request_or_job_does_not(tmp_path):
    # A new interpreter: in this one, earlier tests have used the ORM already.
    code = (
        "from app import create_app\n"
        f"create_app({{'database_url': 'sqlite:///{tmp_path / 'm.db'}'}})\n"
        "from app.domains.leads.models import Lead\n"
        "from app.platform.scheduling.models import ScheduledJob\n"
        "print('configured:', Lead.__mapper__.configured and ScheduledJob.__mapper__.configured)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "configured: True" in run.stdout.splitlines()


def test_a_celery_pool_child_opens_its_database_connection_before_its_first_job(migrated_database, redis_url):
    flask_app = create_app(test_settings(migrated_database, redis_url))
    engine = flask_app.extensions["followup.db"].engine
    try:
        celery_app.prepare_pool_child(flask_app)
        assert engine.pool.checkedin() == 1  # open and waiting in the child's own pool
    finally:
        engine.dispose()


def test_a_gunicorn_worker_opens_its_database_connection_before_its_first_request(
    migrated_database, redis_url
):
    flask_app = create_app(test_settings(migrated_database, redis_url))
    engine = flask_app.extensions["followup.db"].engine
    try:
        assert engine.pool.checkedin() == 0
        worker = SimpleNamespace(wsgi=flask_app, handle_error=lambda req, client, addr, exc: None)
        gunicorn_config.post_worker_init(worker)
        assert engine.pool.checkedin() == 1
        # What it loaded is out of the collector's reach: a full collection no longer walks the app.
        assert gc.get_freeze_count() > 0
    finally:
        engine.dispose()


def test_a_database_not_reachable_yet_does_not_stop_a_process_starting(caplog):
    database = Database("postgresql://postgres@127.0.0.1:1/nothing_listens_here")
    with caplog.at_level(logging.WARNING, logger="app.platform.db.database"):
        database.connect_ahead()
    assert "no database connection opened ahead" in caplog.text
    assert database.engine.pool.checkedin() == 0


def _queues_on_a_fresh_rabbitmq_after(start, migrated_database, redis_url) -> dict:
    """The vhost's queues as the console reads them, after `start(flask_app)` and nothing else: no
    worker consuming, no lead captured."""
    need_rabbitmq()
    with rabbitmq_vhost() as url:
        settings = test_settings(migrated_database, redis_url, broker_url=url)
        flask_app = create_app(settings)
        try:
            start(flask_app)
            return health.queue_depths(settings=settings, redis=None)["queues"]
        finally:
            flask_app.extensions["followup.db"].engine.dispose()


def test_a_gunicorn_worker_connects_to_the_broker_and_declares_its_queues_before_its_first_request(
    migrated_database, redis_url
):
    def start(flask_app):
        worker = SimpleNamespace(wsgi=flask_app, handle_error=lambda req, client, addr, exc: None)
        gunicorn_config.post_worker_init(worker)

    queues = _queues_on_a_fresh_rabbitmq_after(start, migrated_database, redis_url)
    assert queues == dict.fromkeys(QUEUES, 0)  # None: never declared (the first lead would pay for it)


def test_a_celery_pool_child_connects_to_the_broker_and_declares_its_queues_before_its_first_job(
    migrated_database, redis_url
):
    queues = _queues_on_a_fresh_rabbitmq_after(celery_app.prepare_pool_child, migrated_database, redis_url)
    assert queues == dict.fromkeys(QUEUES, 0)


def test_a_broker_not_reachable_yet_does_not_stop_a_process_starting(caplog):
    settings = test_settings(
        "sqlite://", "redis://127.0.0.1:1/0", broker_url="amqp://guest:guest@127.0.0.1:1//"
    )
    dispatcher = Dispatcher(settings)
    with caplog.at_level(logging.WARNING, logger="app.platform.scheduling.dispatch"):
        dispatcher.connect_ahead()
    assert "no broker connection opened ahead" in caplog.text
