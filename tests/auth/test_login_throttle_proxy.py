"""Login throttling behind a proxy (issue 42): limits per account and per client address (the
client's from X-Forwarded-For where hops are trusted), an account lock a guesser cannot impose on
everyone, and the same argon2 work for known and unknown emails."""

import logging

import pytest

from app import create_app
from app.domains.auth import passwords
from tests.conftest import TEST_PASSWORD, test_settings

ALICE, BOB = "203.0.113.7", "198.51.100.9"  # two clients behind the same load balancer


@pytest.fixture
def proxied_app(migrated_database, redis_url):
    # One proxy in front (trusted), per-address and per-account limits low enough to reach here.
    return create_app(
        test_settings(
            migrated_database,
            redis_url,
            trusted_proxy_hops=1,
            login_max_failures=3,
            login_max_failures_per_address=5,
            login_max_failures_per_account=6,
        )
    )


def login(client, email, password, client_address):
    return client.post(
        "/api/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": client_address},
    )


def test_a_guesser_behind_the_proxy_locks_out_only_themselves(proxied_app, tenant):
    client, email = proxied_app.test_client(), tenant.users["front_desk"].email
    for _ in range(3):
        assert login(client, email, "wrong-password-1", ALICE).status_code == 401
    assert login(client, email, TEST_PASSWORD, ALICE).status_code == 429
    assert login(client, email, TEST_PASSWORD, BOB).status_code == 200


def test_one_client_trying_many_emails_does_not_lock_every_login(proxied_app, tenant):
    client = proxied_app.test_client()
    for n in range(5):
        assert login(client, f"nobody{n}@example.com", "wrong-password-1", ALICE).status_code == 401
    assert login(client, tenant.users["clinic_admin"].email, TEST_PASSWORD, ALICE).status_code == 429
    assert login(client, tenant.users["clinic_admin"].email, TEST_PASSWORD, BOB).status_code == 200


def test_a_guess_spread_over_addresses_meets_the_per_account_ceiling(proxied_app, tenant):
    client, email = proxied_app.test_client(), tenant.users["doctor"].email
    for n in range(6):  # two from each of three addresses: under every per-address limit
        assert login(client, email, "wrong-password-1", f"192.0.2.{n // 2 + 1}").status_code == 401
    refused = login(client, email, TEST_PASSWORD, "192.0.2.99")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # Only that account: another account from the same fresh address signs in.
    assert login(client, tenant.users["front_desk"].email, TEST_PASSWORD, "192.0.2.99").status_code == 200


class CountingHasher:
    """The real argon2 hasher, its verifications counted."""

    def __init__(self, real):
        self.real, self.verified = real, []

    def verify(self, hash_, password):
        self.verified.append(hash_)
        return self.real.verify(hash_, password)

    def hash(self, password):
        return self.real.hash(password)


@pytest.fixture
def argon2_verifications(monkeypatch):
    counting = CountingHasher(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", counting)
    return counting.verified


def test_unknown_and_known_emails_cost_the_same_argon2_work(client, tenant, argon2_verifications):
    unknown = client.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": "wrong-guess-1"}
    )
    known = client.post(
        "/api/auth/login", json={"email": tenant.users["front_desk"].email, "password": "wrong-guess-1"}
    )
    assert unknown.status_code == known.status_code == 401
    assert unknown.json["message"] == known.json["message"]
    assert len(argon2_verifications) == 2  # one verification each: the unknown email's on a dummy hash


def test_forwarded_requests_without_trusted_hops_are_warned_about(migrated_database, redis_url, caplog):
    untrusting = create_app(test_settings(migrated_database, redis_url))
    with caplog.at_level(logging.WARNING, logger="app.platform.ratelimit"):
        for _ in range(2):
            untrusting.test_client().get("/healthz", headers={"X-Forwarded-For": ALICE})
    warnings = [r for r in caplog.records if "FOLLOWUP_TRUSTED_PROXY_HOPS" in r.getMessage()]
    assert len(warnings) == 1


def test_an_email_of_several_clinics_verifies_each_of_its_accounts(client, make_tenant, argon2_verifications):
    # One argon2 verification per account (the unknown email: its one dummy): which account the
    # password opens, if any, does not change the work.
    a, b = make_tenant("A"), make_tenant("B")
    email = a.users["doctor"].email
    body = {"email": email, "name": "Pat Both", "role": "doctor", "password": "b-own-password-1"}
    assert client.post("/api/users", headers=b.headers(), json=body).status_code == 201
    argon2_verifications.clear()
    attempts = [
        ({"email": "nobody@example.com", "password": "wrong-guess-1"}, 401, 1),
        ({"email": email, "password": "wrong-guess-1"}, 401, 2),
        ({"email": email, "password": TEST_PASSWORD}, 200, 2),
        ({"email": email, "password": "b-own-password-1"}, 200, 2),
        ({"email": email, "password": "wrong-guess-1", "clinic": b.id}, 401, 1),
    ]
    for attempt, status, verifications in attempts:
        before = len(argon2_verifications)
        assert client.post("/api/auth/login", json=attempt).status_code == status, attempt
        assert len(argon2_verifications) - before == verifications, attempt
