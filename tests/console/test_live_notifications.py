"""The console's live notifications in a real browser (Debian's Chromium through Playwright): the
page opens the user's event stream on the real stream process (a child process) with a stream token
from the console, and a lead the front desk creates appears on the coordinator's page without a reload."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.test_browser import log_in
from tests.leadkit import create_lead
from tests.stream.kit import only_assignee, stream_process


def test_the_consoles_notifications_update_without_a_reload(
    app, client, tenant, celery_worker, monkeypatch, live_server, page
):
    settings = app.config["SETTINGS"]
    only_assignee(app, tenant, "treatment_coordinator")
    # The stream process is another origin (its own port): it lets the console's origin in (CORS).
    with stream_process(settings, CORS_ORIGINS=live_server) as stream:
        monkeypatch.setattr(settings, "stream_url", f"{stream}/api/me/events")
        log_in(page, live_server, tenant, role="treatment_coordinator")
        expect(page.locator("#live-status")).to_have_text("live")
        page.evaluate("window.notReloaded = true")
        items = page.locator("#live-items li")
        expect(items).to_have_count(0)

        lead = create_lead(client, tenant, role="front_desk", first_name="Zoe", last_name="Park")

        assigned = page.locator("#live-items li[data-type='lead.assigned']")
        expect(assigned).to_have_text("Lead assigned to you: Zoe Park")
        expect(page.locator("#live-items li[data-type='task.assigned']")).to_have_count(1)
        expect(page.locator("#live-count")).not_to_have_text("0")
        assert page.evaluate("window.notReloaded") is True  # the same page: nothing reloaded it
        assert assigned.get_attribute("data-id").isdigit() and lead["id"]
