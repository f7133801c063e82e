"""RabbitMQ as the broker (CELERY_BROKER_URL=amqp://...): a lead's automation runs end to end through a
`celery worker` process on the machine's RabbitMQ (a virtual host of this run's own), Redis stays for
rate limits and throttling, and /readyz checks both. The fault tests run on both brokers in
test_faults.py (the `broker` fixture)."""

from __future__ import annotations

import pytest

from app.platform.config import DEFAULT_REDIS_URL, Settings
from tests.automation.kit import tasks_of
from tests.reliability.conftest import WORKER_ENV
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

pytestmark = pytest.mark.reliability


def test_a_new_lead_gets_its_call_task_through_a_worker_on_rabbitmq(rabbitmq_app, make_tenant):
    app = rabbitmq_app
    assert app.config["SETTINGS"].celery_broker_url.startswith("amqp://")
    tenant = make_tenant()
    client = app.test_client()
    with subprocess_worker(app.config["SETTINGS"], name="rabbit", **WORKER_ENV):
        wait_until_consuming(app, "rabbit")
        resp = client.post(
            "/api/leads", json={"first_name": "Rae", "last_name": "Bit"}, headers=tenant.headers("front_desk")
        )
        assert resp.status_code == 201, resp.get_json()
        lead_id = resp.get_json()["id"]
        tasks = wait_for(lambda: tasks_of(app, lead_id), timeout=60)
    assert [t.title for t in tasks] == ["Initial contact"]


def test_readyz_checks_the_rabbitmq_broker_and_redis_apart(rabbitmq_app):
    resp = rabbitmq_app.test_client().get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["checks"] == {"database": "ok", "broker": "ok", "redis": "ok"}


def test_an_amqp_broker_url_leaves_redis_to_redis(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/clinic")
    settings = Settings.from_env()
    assert settings.celery_broker_url == "amqp://guest:guest@127.0.0.1:5672/clinic"
    assert settings.redis_url == DEFAULT_REDIS_URL and not settings.broker_is_redis
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6390/2")
    settings = Settings.from_env()
    assert settings.redis_url == "redis://127.0.0.1:6390/2" and settings.broker_is_redis
