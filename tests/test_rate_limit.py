"""Rate limits: per user or API key; 429 with Retry-After in the API's error shape."""

import logging

import pytest

from app import create_app
from app.devtools.local_redis import LocalRedis
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
    assert body["code"] == "rate_limited" and body["status"] == "Too Many Requests" and body["message"]
    assert client.get("/api/me", headers=desk).status_code == 200  # another user has a bucket of their own
    assert client.get("/healthz").status_code == 200  # probes are never limited


def test_a_redis_outage_lets_requests_through_with_one_warning_and_no_traceback(
    migrated_database, tenant, caplog
):
    unreachable = "redis://127.0.0.1:9/0"  # the discard port: nothing listens, the connection is refused
    app = create_app(test_settings(migrated_database, unreachable, rate_limit_per_minute=5))
    client = app.test_client()
    headers = tenant.headers("clinic_admin")
    with caplog.at_level(logging.INFO, logger="flask-limiter"):
        statuses = [client.get("/api/me", headers=headers).status_code for _ in range(8)]
    assert statuses == [200] * 8  # more than the limit: unchecked, not refused
    limiter_records = [r for r in caplog.records if r.name == "flask-limiter"]
    assert [r.levelname for r in limiter_records] == ["WARNING"]
    assert limiter_records[0].exc_info is None and "unreachable" in limiter_records[0].getMessage()


def test_redis_lost_between_the_check_and_the_answer_still_answers(migrated_database, tenant, tmp_path):
    """The limit was checked, then Redis went (a failover mid-request): the answer stands, without
    RateLimit-* headers, instead of a 500 from reading the window for them."""
    server = LocalRedis(tmp_path / "redis").start()
    try:
        app = create_app(test_settings(migrated_database, server.url, rate_limit_per_minute=5))
        lose_redis = []
        # The limit is checked by the view's access check; after_request hooks run last registered
        # first, so this one runs before the limiter's RateLimit-* headers: Redis goes mid-request.
        app.after_request(lambda response: (server.stop() if lose_redis else None) or response)
        client = app.test_client()
        headers = tenant.headers("clinic_admin")
        assert client.get("/api/me", headers=headers).headers["RateLimit-Limit"] == "5"
        lose_redis.append(True)
        resp = client.get("/api/me", headers=headers)
        assert resp.status_code == 200
        assert "RateLimit-Limit" not in resp.headers
    finally:
        server.stop()
