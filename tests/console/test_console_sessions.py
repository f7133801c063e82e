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


STRICT = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
)


def test_pages_allow_only_their_own_scripts_and_nothing_that_may_hold_phi_is_cached(console, client, tenant):
    """Issue 73 finding 12: the console's only policy was frame-ancestors, and neither its pages nor
    the API's answers said `no-store`."""
    from tests.booking_page.kit import page_path
    from tests.leadkit import create_lead

    lead = create_lead(client, tenant)
    log_in(console, tenant)
    lead_page = console.get(f"/console/leads/{lead['id']}")
    booking = client.get(page_path(client, tenant))
    for page in (lead_page, console.get("/console/login"), booking):
        assert page.status_code == 200
        policy = [directive.strip() for directive in page.headers["Content-Security-Policy"].split(";")]
        assert set(STRICT) <= set(policy), policy
        assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
        assert page.headers["Cache-Control"] == "no-store"
    # The event stream may be on its own origin: the console's scripts may connect to it.
    assert "connect-src 'self' http://localhost:5001" in lead_page.headers["Content-Security-Policy"]
    for answer in (
        client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()),
        client.get("/api/leads", headers=tenant.headers()),
        client.get(f"/api/leads/{lead['id']}"),  # a refusal too (401)
    ):
        assert answer.headers["Cache-Control"] == "no-store"
    # The OpenAPI document carries nobody's data: caches may keep it.
    assert "no-store" not in client.get("/api/openapi.json").headers.get("Cache-Control", "")
    assert "no-store" not in console.get("/console/static/console.css").headers.get("Cache-Control", "")


def test_no_template_holds_what_the_policy_would_block():
    """Inline <script>, on...= handlers, javascript: URLs and style attributes or <style> elements
    would be refused by the pages' policy (no 'unsafe-inline'): each belongs in a static file."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "app"
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|javascript:|\sstyle\s*=|<style\b", re.IGNORECASE
    )
    pages = [*(root / "console").rglob("*.html"), *(root / "booking_page").rglob("*.html")]
    assert pages
    found = [
        f"{path.relative_to(root)}: {match.group(0)}"
        for path in pages
        for match in inline.finditer(path.read_text())
    ]
    assert found == []
