"""Console sessions revocable and framed safely (issue 42): a copy of the session cookie stops
working at logout and at a password change; every page and API answer carries the security headers."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_PASSWORD
from tests.console.test_console_pages import csrf_of, log_in

COOKIE = "followup_console"
NEW_PASSWORD = "another-password-42"


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def copy_of_cookie(app, source):
    """A second browser holding a copy of `source`'s session cookie."""
    value = source.get_cookie(COOKIE, path="/console").value
    thief = app.test_client()
    thief.set_cookie(COOKIE, value, path="/console")
    return thief


def is_login_redirect(resp) -> bool:
    return resp.status_code == 302 and "/console/login" in resp.headers["Location"]


def test_a_copied_cookie_stops_working_at_logout(app, console, tenant):
    log_in(console, tenant)
    thief = copy_of_cookie(app, console)
    assert thief.get("/console/failures").status_code == 200  # the copy works while the session lives
    token = csrf_of(console.get("/console/failures").get_data(as_text=True))
    assert console.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert is_login_redirect(thief.get("/console/failures"))


def test_a_copied_cookie_stops_working_at_a_password_change(app, console, client, tenant):
    log_in(console, tenant)
    thief = copy_of_cookie(app, console)
    changed = client.post(
        "/api/me/password",
        json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
        headers=tenant.headers(),
    )
    assert changed.status_code == 200, changed.json
    assert is_login_redirect(thief.get("/console/failures"))
    assert is_login_redirect(console.get("/console/failures"))


def test_logging_in_again_after_logout_works(console, tenant):
    log_in(console, tenant)
    token = csrf_of(console.get("/console/failures").get_data(as_text=True))
    console.post("/console/logout", data={"csrf_token": token})
    log_in(console, tenant)
    assert console.get("/console/failures").status_code == 200


def assert_framed_safely(resp):
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"]


def test_pages_and_api_answers_carry_the_security_headers(console, client, tenant):
    log_in(console, tenant)
    page = console.get("/console/failures")
    assert page.status_code == 200
    assert_framed_safely(page)
    assert_framed_safely(console.get("/console/login"))
    answer = client.get("/api/me", headers=tenant.headers())
    assert answer.status_code == 200
    assert_framed_safely(answer)
    assert_framed_safely(client.get("/api/me"))  # an error answer too (401)
    assert "Strict-Transport-Security" not in answer.headers  # plain http: HSTS would be ignored


def test_hsts_on_https_answers(client, tenant):
    answer = client.get("/api/me", headers=tenant.headers(), base_url="https://localhost")
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
