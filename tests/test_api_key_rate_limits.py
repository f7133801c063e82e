"""Integrator limits: an API key has its own rate limit, set by the admin (default 1,000/minute);
limited answers carry RateLimit-Limit/-Remaining/-Reset, and a 429 Retry-After, for users too."""

import pytest

from app import create_app
from tests.conftest import test_settings


@pytest.fixture
def limited_app(migrated_database, redis_url, redis):
    # Users get 5 requests a minute here, so an API key's own (higher) limit is plain to see.
    yield create_app(test_settings(migrated_database, redis_url, rate_limit_per_minute=5))
    redis.flushdb()


def new_key(client, tenant, **fields):
    resp = client.post(
        "/api/api-keys",
        json={"name": "expo import", "permissions": ["lead:read", "lead:create"], **fields},
        headers=tenant.headers(),
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_a_new_key_gets_1000_a_minute_and_its_answers_say_so(client, tenant):
    key = new_key(client, tenant)
    assert key["rate_limit_per_minute"] == 1000
    # The session app's users have a limit of a million: the key's own limit is what its answers name.
    first = client.get("/api/me", headers={"X-API-Key": key["key"]})
    second = client.get("/api/me", headers={"X-API-Key": key["key"]})
    assert first.status_code == second.status_code == 200
    assert first.headers["RateLimit-Limit"] == "1000"
    assert (int(first.headers["RateLimit-Remaining"]), int(second.headers["RateLimit-Remaining"])) == (
        999,
        998,
    )
    assert 0 <= int(first.headers["RateLimit-Reset"]) <= 60


def test_a_key_has_the_limit_its_admin_set_not_the_users_one(limited_app, make_tenant):
    client = limited_app.test_client()
    tenant = make_tenant()
    key = new_key(client, tenant, rate_limit_per_minute=8)
    assert key["rate_limit_per_minute"] == 8
    api = {"X-API-Key": key["key"]}
    answers = [client.get("/api/me", headers=api) for _ in range(9)]
    assert [r.status_code for r in answers] == [200] * 8 + [429]  # 8, above the users' 5
    refused = answers[-1]
    assert refused.headers["RateLimit-Limit"] == "8"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert 0 <= int(refused.headers["RateLimit-Reset"]) <= 60
    assert refused.get_json()["code"] == "rate_limited"


def test_the_admin_raises_a_keys_limit_and_it_applies_at_once(limited_app, make_tenant):
    client = limited_app.test_client()
    tenant = make_tenant()
    key = new_key(client, tenant, rate_limit_per_minute=2)
    api = {"X-API-Key": key["key"]}
    assert [client.get("/api/me", headers=api).status_code for _ in range(3)] == [200, 200, 429]
    # The admin's own requests count against the admin's limit (5): two here.
    changed = client.put(
        f"/api/api-keys/{key['id']}", json={"rate_limit_per_minute": 300}, headers=tenant.headers()
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["rate_limit_per_minute"] == 300
    listed = client.get("/api/api-keys", headers=tenant.headers()).get_json()
    assert [k["rate_limit_per_minute"] for k in listed] == [300]
    resp = client.get("/api/me", headers=api)
    assert resp.status_code == 200 and resp.headers["RateLimit-Limit"] == "300"


def test_users_limited_answers_carry_the_headers_too(limited_app, make_tenant):
    client = limited_app.test_client()
    tenant = make_tenant()
    desk = tenant.headers("front_desk")
    answers = [client.get("/api/me", headers=desk) for _ in range(6)]
    assert [r.status_code for r in answers] == [200] * 5 + [429]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["4", "3", "2", "1", "0", "0"]
    assert {r.headers["RateLimit-Limit"] for r in answers} == {"5"}
    assert "Retry-After" not in answers[0].headers  # only a refusal says when to come back
    assert int(answers[-1].headers["Retry-After"]) >= 1


def test_a_keys_limit_is_checked_and_only_an_admin_sets_it(client, tenant, make_tenant):
    for bad in (0, -5, 1_000_001, "many", 2.5):
        resp = client.post(
            "/api/api-keys",
            json={"name": "x", "permissions": ["lead:read"], "rate_limit_per_minute": bad},
            headers=tenant.headers(),
        )
        assert resp.status_code == 422, (bad, resp.get_json())
        assert "rate_limit_per_minute" in resp.get_json()["errors"]["json"]
    key = new_key(client, tenant)
    url = f"/api/api-keys/{key['id']}"
    body = {"rate_limit_per_minute": 5000}
    assert client.put(url, json=body, headers=tenant.headers("treatment_coordinator")).status_code == 403
    assert client.put(url, json=body, headers={"X-API-Key": key["key"]}).status_code == 403
    assert client.put(url, json=body, headers=make_tenant().headers()).status_code == 404  # another clinic's
    assert (
        client.get("/api/api-keys", headers=tenant.headers()).get_json()[0]["rate_limit_per_minute"] == 1000
    )
