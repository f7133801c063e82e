"""Login, refresh, expired and forged tokens, disabled users, login throttling."""

import threading
import time
from datetime import timedelta

import jwt
import pytest
import sqlalchemy as sa

from app.domains.auth import passwords
from app.domains.auth.models import User
from app.platform import clock
from tests.conftest import TEST_PASSWORD


def login(client, email, password=TEST_PASSWORD, address="127.0.0.1"):
    return client.post(
        "/api/auth/login", json={"email": email, "password": password}, environ_base={"REMOTE_ADDR": address}
    )


def test_login_gives_tokens_that_open_me(client, tenant):
    user = tenant.users["treatment_coordinator"]
    resp = login(client, user.email.upper())  # emails are case-insensitive
    assert resp.status_code == 200
    me = client.get("/api/me", headers={"Authorization": f"Bearer {resp.json['access_token']}"})
    assert me.status_code == 200
    assert me.json["id"] == user.id
    assert me.json["role"] == "treatment_coordinator"
    assert me.json["clinic_id"] == tenant.id
    assert "lead:convert" in me.json["permissions"] and "lead:configure" not in me.json["permissions"]


def test_wrong_password_and_unknown_email_are_401(client, tenant):
    assert login(client, tenant.users["doctor"].email, "nope").status_code == 401
    assert login(client, "nobody@example.com").status_code == 401


def test_refresh_gives_a_new_pair_and_access_tokens_cannot_refresh(client, tenant):
    tokens = login(client, tenant.users["doctor"].email).json
    resp = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert resp.status_code == 200
    assert (
        client.get("/api/me", headers={"Authorization": f"Bearer {resp.json['access_token']}"}).status_code
        == 200
    )
    wrong_kind = client.post("/api/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert wrong_kind.status_code == 401


def test_refresh_tokens_cannot_open_the_api(client, tenant):
    tokens = login(client, tenant.users["doctor"].email).json
    resp = client.get("/api/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert resp.status_code == 401


def test_expired_token_is_401(client, tenant):
    old = tenant.token("clinic_admin", now=clock.now() - timedelta(hours=2), lifetime=timedelta(minutes=30))
    resp = client.get("/api/me", headers={"Authorization": f"Bearer {old}"})
    assert resp.status_code == 401
    assert "expired" in resp.json["message"]


def test_forged_token_is_401(client, tenant):
    user = tenant.users["clinic_admin"]
    now = clock.now()
    forged = jwt.encode(
        {
            "sub": str(user.id),
            "clinic": user.clinic_id,
            "type": "access",
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=5)).timestamp()),
        },
        "not-the-server-secret-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    assert client.get("/api/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    unsigned = jwt.encode({"sub": str(user.id), "type": "access", "exp": 9999999999}, None, algorithm="none")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {unsigned}"}).status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Bearer garbage"}).status_code == 401


def test_disabled_user_cannot_log_in_or_use_old_tokens(client, db, tenant):
    user = tenant.users["front_desk"]
    token = tenant.token("front_desk")
    with db.unit_of_work() as session:
        session.execute(sa.update(User).where(User.id == user.id).values(active=False))
    assert login(client, user.email).status_code == 401
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_repeated_failed_logins_are_throttled_per_email_and_address(client, tenant):
    email = tenant.users["doctor"].email
    for _ in range(3):  # login_max_failures=3 in the test settings
        assert login(client, email, "wrong").status_code == 401
    locked = login(client, email)  # even the right password waits
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    # Another email is not affected, nor the same email from another address: a guesser cannot
    # lock a user out from everywhere.
    assert login(client, tenant.users["clinic_admin"].email).status_code == 200
    assert login(client, email, address="198.51.100.7").status_code == 200


@pytest.mark.parametrize(
    "body", [{}, {"email": "a@b.c"}, {"email": "", "password": ""}, {"email": 5, "password": []}]
)
def test_malformed_login_bodies_are_422(client, body):
    assert client.post("/api/auth/login", json=body).status_code == 422


def test_parallel_wrong_guesses_never_get_past_the_limit(app, tenant):
    """8 wrong guesses at once against a limit of 3: exactly 3 are checked (401), 5 refused (429)."""
    email, start, statuses = tenant.users["doctor"].email, threading.Barrier(8), []

    def guess():
        client = app.test_client()
        start.wait()
        statuses.append(login(client, email, "wrong").status_code)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [401] * 3 + [429] * 5


def test_one_address_trying_many_emails_is_throttled(client, tenant, monkeypatch):
    monkeypatch.setattr(tenant.app.config["SETTINGS"], "login_max_failures_per_address", 4)
    for n in range(4):
        assert login(client, f"nobody{n}@example.com", "wrong", address="192.0.2.1").status_code == 401
    assert login(client, tenant.users["doctor"].email, address="192.0.2.1").status_code == 429
    assert login(client, tenant.users["doctor"].email, address="192.0.2.2").status_code == 200


def refresh(client, token):
    return client.post("/api/auth/refresh", json={"refresh_token": token})


@pytest.mark.parametrize(
    "change", [{"password": "a-new-password-123"}, {"role": "doctor"}, {"active": False}], ids=str
)
def test_a_password_role_or_status_change_revokes_every_earlier_token(client, tenant, change):
    user = tenant.users["treatment_coordinator"]
    tokens = login(client, user.email).get_json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/api/me", headers=bearer).status_code == 200
    resp = client.put(f"/api/users/{user.id}", json=change, headers=tenant.headers("clinic_admin"))
    assert resp.status_code == 200, resp.get_json()
    assert refresh(client, tokens["refresh_token"]).status_code == 401
    assert client.get("/api/me", headers=bearer).status_code == 401


def test_other_changes_keep_tokens_and_new_logins_work_after_a_password_reset(client, tenant):
    user = tenant.users["treatment_coordinator"]
    tokens = login(client, user.email).get_json()
    admin = tenant.headers("clinic_admin")
    assert client.put(f"/api/users/{user.id}", json={"name": "Renamed"}, headers=admin).status_code == 200
    assert refresh(client, tokens["refresh_token"]).status_code == 200
    assert (
        client.put(
            f"/api/users/{user.id}", json={"password": "a-new-password-123"}, headers=admin
        ).status_code
        == 200
    )
    fresh = login(client, user.email, "a-new-password-123").get_json()
    assert (
        client.get("/api/me", headers={"Authorization": f"Bearer {fresh['access_token']}"}).status_code == 200
    )
    assert refresh(client, fresh["refresh_token"]).status_code == 200


def test_a_counter_released_after_its_window_lapsed_still_expires(client, tenant, redis, monkeypatch):
    """A login whose attempt was counted, then its window lapsed before the success took it back:
    the release must not leave a counter without a window (a DECR of the expired key made one at -1
    that never expired, and an office's shared address was refused for good with Retry-After: 1)."""
    settings = tenant.app.config["SETTINGS"]
    email, address = tenant.users["doctor"].email, "203.0.113.9"
    keys = passwords.throttle_keys(email, address)
    monkeypatch.setattr(settings, "login_lockout_seconds", 1)
    passwords.count_attempt(redis, keys, settings)  # the login's attempt is counted...
    time.sleep(1.2)  # ...the window lapses while the password is checked...
    passwords.forget_attempt(redis, keys)  # ...and the success takes the attempt back
    for key in keys:
        assert redis.get(key) is None or (int(redis.get(key)) >= 0 and redis.ttl(key) > 0), key

    # Failures from the address later are counted in a window that ends, and the 429 says when.
    monkeypatch.setattr(settings, "login_lockout_seconds", 3)
    monkeypatch.setattr(settings, "login_max_failures_per_address", 2)
    for n in range(2):
        assert login(client, f"nobody{n}@example.com", "wrong", address=address).status_code == 401
    locked = login(client, email, address=address)
    assert locked.status_code == 429
    assert 2 <= int(locked.headers["Retry-After"]) <= 3
    assert all(redis.ttl(key) > 0 for key in keys[1:])
    time.sleep(int(locked.headers["Retry-After"]) + 0.2)
    assert login(client, email, address=address).status_code == 200
