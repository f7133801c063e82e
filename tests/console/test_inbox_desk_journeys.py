"""The inbox beside its contact in a real browser (Debian's Chromium through Playwright): at a desk's
1280 px the conversation list, the thread and the family's card stand side by side; at a phone's
390 px the thread alone, its "About this family" link showing the card and "Back to the inbox"
going to the list."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console import test_inbox_pages
from tests.console.test_browser import log_in
from tests.console.test_inbox_desk import two_families

providers = test_inbox_pages.providers  # the Twilio stand-in, the app pointed at it


def test_three_panes_on_a_desk_and_the_thread_alone_on_a_phone(
    app, client, tenant, providers, live_server, page
):
    maria, _ = two_families(app, client, tenant)
    log_in(page, live_server, tenant, role="treatment_coordinator")
    thread_url = f"{live_server}/console/inbox/leads/{maria['id']}"

    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(thread_url)
    listed, thread, card = (page.locator(s) for s in (".desk-list", "#conversation", "#family"))
    for pane in (listed, thread, card):
        expect(pane).to_be_visible()
    boxes = [pane.bounding_box() for pane in (listed, thread, card)]
    assert boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"]  # side by side, left to right
    assert boxes[1]["x"] + boxes[1]["width"] <= boxes[2]["x"]
    assert abs(boxes[0]["y"] - boxes[2]["y"]) < 5  # one row
    expect(listed.locator("a[aria-current='page']")).to_have_text("Maria Lopez")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(thread_url)
    expect(thread).to_be_visible()
    expect(listed).to_be_hidden()
    expect(card).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("link", name="About this family").click()
    expect(card).to_be_visible()
    expect(card).to_contain_text("jane@example.com")
    page.get_by_role("link", name="Back to the inbox").click()
    expect(page).to_have_url(f"{live_server}/console/inbox?status=open")
    expect(page.locator("#inbox-rows")).to_contain_text("Maria Lopez")
