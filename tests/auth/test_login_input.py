"""Login with any input the schema allows answers 401 (or 429 once throttled), never 500:
schemathesis found `{"email": "000", "password": ...}` answering 500."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("email", ["000", "0000000", "ÄÖÜ", "a@b", "x" * 254])
def test_a_login_with_an_email_that_is_no_address_is_a_401(client, email):
    resp = client.post("/api/auth/login", json={"email": email, "password": "x"})
    assert resp.status_code == 401, resp.get_json()
    assert resp.get_json()["code"] == "unauthorized"


def test_repeated_logins_with_it_are_throttled_not_a_500(client, app):
    limit = app.config["SETTINGS"].login_max_failures
    answers = [
        client.post("/api/auth/login", json={"email": "000000", "password": "x"}).status_code
        for _ in range(limit + 2)
    ]
    assert answers == [401] * limit + [429, 429]
