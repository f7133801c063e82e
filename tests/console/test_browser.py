"""The console in a real browser (Chromium through Playwright) against a real server, worker, Redis
and SQL database: a dead email retried once from the page, a bulk job's progress bar, CSRF, roles,
a chart, a second factor's code at login."""

from __future__ import annotations

import time

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser import serious_violations
from tests.conftest import TEST_PASSWORD
from tests.leadkit import create_lead
from tests.outbound.fakes import free_port, smtp_server
from tests.outbound.kit import FAST_DELIVERY, all_in, queue_emails, smtp_settings, use
from tests.reliability.conftest import sweeping
from tests.workers import thread_worker, wait_for


def log_in(page, base: str, tenant, role: str = "clinic_admin") -> None:
    page.goto(f"{base}/console/login")
    page.fill("input[name=email]", tenant.users[role].email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("header nav")).to_be_visible()


@pytest.fixture
def fast_delivery(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, **FAST_DELIVERY)
    return settings


def test_a_dead_email_to_an_unreachable_relay_is_retried_from_the_page_and_sent_once(
    app, db, tenant, fast_delivery, monkeypatch, live_server, page
):
    port = free_port()  # nothing listens here yet: the relay is down
    use(monkeypatch, fast_delivery, notification_max_attempts=2, **smtp_settings(port))
    (email,) = queue_emails(app, tenant, 1)
    with thread_worker(app), sweeping(app):
        wait_for(lambda: all_in(db, [email], {"dead"}), timeout=30)
        log_in(page, live_server, tenant)
        page.goto(f"{live_server}/console/failures?channel=email")
        row = page.locator(f"#failures tr[data-id='{email}']")
        from app.console.wording import FAILURE_STATUSES

        expect(row.locator(".status")).to_have_text(FAILURE_STATUSES["dead"][0])  # a word, not `dead`
        expect(row.locator(".err")).to_contain_text("onnect")
        with smtp_server(port) as (relay, _):
            row.locator("button.retry").click()
            expect(page.locator(".flash")).to_contain_text(f"notification {email} queued again")
            wait_for(lambda: all_in(db, [email], {"sent"}), timeout=30)
            time.sleep(1)  # a second send would land now
            assert len(relay.accepted) == 1 and set(relay.accepted.values()) == {1}
    page.goto(f"{live_server}/console/failures?channel=email")
    expect(page.locator(f"#failures tr[data-id='{email}']")).to_have_count(0)


def test_retry_filtered_shows_the_count_first(app, db, tenant, live_server, page):
    ids = queue_emails(app, tenant, 4)
    from tests.console.test_console_pages import set_status

    set_status(db, ids[:3], "dead", last_error="connection refused")
    # Its answer never came: it may have reached the lead, so the bulk retry leaves it out and says so.
    set_status(
        db, ids[3:], "unknown", last_error="outcome unknown, may already have reached the lead: refused"
    )
    log_in(page, live_server, tenant)
    page.goto(f"{live_server}/console/failures?error=refused")
    page.click("#retry-filtered")
    expect(page.locator("#preview-count")).to_contain_text("This will retry 3")
    expect(page.locator(".warning")).to_contain_text("1 matching message(s) whose outcome is unknown")
    page.click("#confirm-retry")
    expect(page.locator(".flash")).to_contain_text("3 queued again")
    assert all_in(db, ids[:3], {"pending", "sending", "sent", "dead"})
    assert all_in(db, ids[3:], {"unknown"})


def test_a_bulk_jobs_progress_bar_moves_to_done(app, client, tenant, monkeypatch, live_server, page):
    monkeypatch.setattr(app.config["SETTINGS"], "bulk_chunk_size", 2)
    leads = [create_lead(client, tenant, first_name=f"L{i}") for i in range(6)]
    resp = client.post(
        "/api/leads/tasks/bulk",
        json={"lead_ids": [lead["id"] for lead in leads], "title": "Thanks for visiting", "type": "CALL",
              "due_in_minutes": 60},
        headers=tenant.headers("treatment_coordinator"),
    )  # fmt: skip
    assert resp.status_code == 202, resp.get_json()
    bulk_id = resp.get_json()["id"]
    log_in(page, live_server, tenant)
    page.goto(f"{live_server}/console/bulk-jobs")
    bar = page.locator(f"#bulk-jobs tr[data-id='{bulk_id}'] .progress")
    expect(bar).to_have_attribute("data-status", "pending")
    with thread_worker(app), sweeping(app):
        expect(bar).to_have_attribute("data-status", "done", timeout=30_000)
    expect(bar.locator(".done")).to_have_text("6")
    assert bar.locator(".bar").evaluate("el => el.style.width") == "100%"


def test_a_form_without_its_csrf_token_is_refused(tenant, live_server, page):
    log_in(page, live_server, tenant)
    page.goto(f"{live_server}/console/failures")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    page.click("header .user-menu summary")  # the user menu holds the log out button
    page.click("header .user-menu button[type=submit]")  # log out, without the token
    expect(page.locator("body")).to_contain_text("CSRF")
    page.goto(f"{live_server}/console/failures")
    expect(page.locator("h1")).to_have_text("Failures")  # still logged in: the forged post did nothing


def test_front_desk_cannot_open_the_failures_page(tenant, live_server, page):
    log_in(page, live_server, tenant, role="front_desk")
    response = page.goto(f"{live_server}/console/failures")
    assert response.status == 403
    expect(page.locator(".error")).to_contain_text("lead:configure")


def test_the_analytics_page_renders_its_charts_as_svg(client, tenant, live_server, page):
    create_lead(client, tenant)
    log_in(page, live_server, tenant)
    page.goto(f"{live_server}/console/analytics")
    funnel = page.locator("#funnel svg.chart")
    expect(funnel).to_be_visible()
    assert funnel.bounding_box()["height"] > 50
    expect(page.locator("#funnel svg rect.bar").first).to_be_attached()
    expect(page.locator("#speed svg.chart")).to_be_visible()
    expect(page.locator("#funnel table tbody tr").first).to_be_visible()


def test_the_login_asks_a_user_with_a_second_factor_for_the_code(client, tenant, live_server, page):
    email = tenant.users["clinic_admin"].email
    started = client.post("/api/auth/second-factor", json={"email": email, "password": TEST_PASSWORD})
    totp = pyotp.TOTP(started.json["secret"])
    confirm = {"email": email, "password": TEST_PASSWORD, "code": totp.now()}
    assert client.post("/api/auth/second-factor/confirm", json=confirm).status_code == 200
    page.goto(f"{live_server}/console/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Log in: your code")
    page.fill(
        "input[name=code]", totp.at(time.time() + 30)
    )  # the next step's: the confirmation took this one
    page.click("button[type=submit]")
    expect(page.locator("header nav")).to_be_visible()


def test_the_policy_blocks_an_injected_script_and_the_browser_tests_see_it(
    tenant, live_server, page, csp_violations
):
    """Issue 73 finding 12: with no script-src, a <script> slipped into server HTML would run."""
    log_in(page, live_server, tenant)
    page.goto(f"{live_server}/console/today")
    with page.expect_console_message(lambda message: "Content Security Policy" in message.text):
        page.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
            " document.body.appendChild(s); }"
        )
    assert page.evaluate("() => window.injected") is None
    assert any("script-src" in violation for violation in csp_violations)
    csp_violations.clear()  # provoked on purpose: any other test's would fail it (tests/browser.py)


def test_the_accessibility_check_sees_a_serious_violation_on_every_document_it_is_shown(
    tenant, live_server, page
):
    """axe-core is handed to the browser once, as a script each later document runs first: the
    check must still see a nameless button on the document it was first run on, and on the next."""
    page.goto(f"{live_server}/console/login")
    assert serious_violations(page) == []
    page.evaluate("document.querySelector('main').append(document.createElement('button'))")
    assert any(line.startswith("button-name:") for line in serious_violations(page))
    page.goto(f"{live_server}/console/forgot-password")
    page.evaluate("document.querySelector('main').append(document.createElement('button'))")
    assert any(line.startswith("button-name:") for line in serious_violations(page))
