"""The team inbox in a real browser (Debian's Chromium through Playwright), with the stream process
as a child and Twilio's signed webhook: an inbound SMS appears in the coordinator's inbox without a
reload with the nav's unread count, opening it marks it read (the count falls); an inbound MMS photo
shows inline to a coordinator and not to the front desk; an unknown sender is captured as a lead;
the "In sequence" label shows for an enrolled lead."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.automation.outreachkit import configure_clinic, lead_with
from tests.console import test_inbox_pages
from tests.console.test_browser import log_in
from tests.conversations.test_conversations import thread
from tests.conversations.test_media import PHOTO, mms
from tests.intake.test_twilio import CLINIC_NUMBER, INBOUND, PHONE, signed_post, text
from tests.stream.kit import only_assignee, stream_process

providers = test_inbox_pages.providers  # the Twilio stand-in, the app pointed at it


def test_an_inbound_text_appears_live_and_opening_it_marks_it_read(
    app,
    client,
    tenant,
    providers,
    celery_worker,
    monkeypatch,
    live_server,
    page,
):
    settings = app.config["SETTINGS"]
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    only_assignee(app, tenant, "treatment_coordinator")
    lead = lead_with(client, tenant, phone=PHONE, first_name="Maria", last_name="Lopez")
    enrolled = test_inbox_pages.enrolled_lead(client, tenant)
    with stream_process(settings, CORS_ORIGINS=live_server) as stream:
        monkeypatch.setattr(settings, "stream_url", f"{stream}/api/me/events")
        log_in(page, live_server, tenant, role="treatment_coordinator")
        page.goto(f"{live_server}/console/inbox?view=mine")
        expect(page.locator("#live-status")).to_have_text("live")
        expect(page.locator(f"#inbox-rows li[data-lead='{lead['id']}']")).to_have_count(0)
        page.evaluate("window.notReloaded = true")

        assert signed_post(client, INBOUND, text("Is Tuesday free?", sid="SMj1")).status_code == 200

        row = page.locator(f"#inbox-rows li[data-lead='{lead['id']}']")
        expect(row).to_contain_text("Maria Lopez")
        expect(row).to_contain_text("Is Tuesday free?")
        expect(row).to_contain_text("1 unread")
        # The spec's label: on the lead in a sequence, not on Maria (her reply ended hers, if any).
        expect(page.locator(f"#inbox-rows li[data-lead='{enrolled}'] .badge.sequence")).to_have_text(
            "In sequence"
        )
        expect(row.locator(".badge.sequence")).to_have_count(0)
        expect(page.locator("#nav-inbox-count")).to_have_text("1")
        assert page.evaluate("window.notReloaded") is True  # the same page: nothing reloaded it

        row.locator("a.who").focus()
        page.keyboard.press("Enter")  # keyboard operable: the row's link opens the thread
        expect(page.locator("#thread li.inbound")).to_contain_text("Is Tuesday free?")
        expect(page.locator("#nav-inbox-count")).to_have_count(0)  # read now: the count fell
        assert thread(client, tenant, lead["id"], role="treatment_coordinator")["unread"] == 0
        page.goto(f"{live_server}/console/inbox?view=mine")
        expect(page.locator(f"#inbox-rows li[data-lead='{lead['id']}']")).not_to_contain_text("unread")


def test_an_mms_photo_shows_inline_to_a_coordinator_and_not_to_the_front_desk(
    client,
    tenant,
    providers,
    live_server,
    page,
):
    provider, settings = providers
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    photo_url = provider.add_media(settings.sms_api_url, "MMk1", PHOTO, "image/png")
    assert signed_post(client, INBOUND, mms("Her smile", "MMk1", (photo_url, "image/png"))).status_code == 200

    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/inbox/leads/{lead['id']}")
    photo = page.locator("#thread img.media")
    expect(photo).to_be_visible()
    # The browser fetched the photo through the console's route, which fetched it from Twilio's host.
    page.wait_for_function("document.querySelector('#thread img.media').complete")
    assert provider.media_fetches == 1

    page.context.clear_cookies()
    log_in(page, live_server, tenant, role="front_desk")
    page.goto(f"{live_server}/console/inbox/leads/{lead['id']}")
    expect(page.locator("#thread li.inbound")).to_contain_text("Image attached")
    expect(page.locator("#thread img")).to_have_count(0)
    expect(page.locator("#thread")).not_to_contain_text("Her smile")
    assert provider.media_fetches == 1


def test_an_unknown_sender_is_captured_as_a_lead_with_the_keyboard(
    client, tenant, providers, live_server, page
):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    signed_post(client, INBOUND, text("Do you do Invisalign for teens?", sid="SMk2", sender="+14155559871"))
    log_in(page, live_server, tenant, role="treatment_coordinator")
    page.goto(f"{live_server}/console/inbox?view=unassigned")
    row = page.locator("#inbox-rows li", has_text="Unknown sender")
    expect(row).to_contain_text("••• 9871")
    row.locator("a.who").click()
    page.locator("#capture-first_name").fill("Ana")
    page.locator("#capture-last_name").fill("Lopez")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Ana Lopez")
    expect(page.locator("#thread li.inbound")).to_contain_text("Do you do Invisalign for teens?")
    lead_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    assert lead["phone"] == "+14155559871"
