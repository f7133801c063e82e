"""Rate limits: per user or API key; 429 with Retry-After in the API's error shape."""

import pytest

from app import create_app
from tests.conftest import test_settings


@pytest.fixture
def limited_app(migrated_database, redis_url, redis):
    yield create_app(test_settings(migrated_database, redis_url, rate_limit_per_minute=5))
    redis.flushdb()


def test_the_limit_answers_429_with_retry_after_per_caller(limited_app, tenant):
    client = limited_app.test_client()
    admin, desk = tenant.headers("clinic_admin"), tenant.headers("front_desk")
    assert [client.get("/api/me", headers=admin).status_code for _ in range(5)] == [200] * 5
    resp = client.get("/api/me", headers=admin)
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) >= 1
    body = resp.get_json()
    assert body["code"] == 429 and body["status"] == "Too Many Requests" and body["message"]
    assert client.get("/api/me", headers=desk).status_code == 200  # another user has a bucket of their own
    assert client.get("/healthz").status_code == 200  # probes are never limited
