"""The booking page in Debian's Chromium: a family opens the link of a real follow-up text, picks
tomorrow 10:00 in their own timezone (the browser's), sees the confirmation, gets the confirmation
email and moves the visit once through its link; another visitor sees nothing of them; the page at a
phone's width, by keyboard alone, without serious axe-core violations; framed only by the clinic's
own website origin."""

from __future__ import annotations

import email
import re
import threading
from datetime import datetime
from email import policy
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from app.domains.consultations.models import Consultation
from tests.automation.outreachkit import lead_with, zone_at_local_hour
from tests.booking_page.kit import FAMILY_ZONE, bookable_clinic, page_path, page_settings, tomorrow_at
from tests.browser import serious_violations
from tests.consultations.kit import E164, PHONE, mails_with, providers, texts_to
from tests.lead_messages.kit import send
from tests.outbound.kit import use
from tests.workers import thread_worker, wait_for

PHONE_SCREEN = {"width": 390, "height": 844}
HUMAN_PAUSE_MS = 3200  # the page refuses a submit faster than 3 seconds after it was drawn


@pytest.fixture
def office(app, monkeypatch, live_server):
    """The SMS and email stand-ins, and links in messages pointing at the live server."""
    with providers(app, monkeypatch) as both:
        use(monkeypatch, app.config["SETTINGS"], public_base_url=live_server)
        yield both


def family_browser(chromium, **options):
    context = chromium.new_context(timezone_id=FAMILY_ZONE, viewport=PHONE_SCREEN, **options)
    context.set_default_timeout(15_000)
    return context


def the_consultation(db) -> Consultation:
    with db.unit_of_work() as session:
        [found] = session.scalars(sa.select(Consultation))
        return found


def link_in_mail(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    # The consultation's own link, through the clinic's tracked redirect (app/domains/engagement).
    return re.search(r"cancel it yourself: (https?://\S+)", text).group(1)


def test_a_family_books_from_a_text_and_moves_it_through_the_confirmation(
    app, client, db, tenant, office, chromium
):
    mailbox, texts = office
    bookable_clinic(client, tenant)
    # Tomorrow at 10 in Tokyo is 10 to 34 hours away by when the test runs: a cut-off under that,
    # so the move is allowed at any hour (the default 24 hours refused it in Tokyo's afternoon).
    page_settings(client, tenant, change_cutoff_hours=2)
    lead = lead_with(client, tenant, phone=PHONE, timezone=zone_at_local_hour(12))
    with thread_worker(app):
        body = "Hi {{ first_name }}, book your free consultation here: {{ booking_link }}"
        send(client, tenant, lead["id"], channel="sms", body=body)
        [text] = wait_for(lambda: texts_to(texts, E164), timeout=60)
        link = re.search(r"https?://\S+", text["Body"]).group(0)
        # The lead's own booking link, filled in by a merge field: sent as it is (only the links a
        # template writes are tracked), and it names nobody.
        assert "Jane" not in link and "/book/l/" in link
        assert client.get(urlsplit(link).path).status_code == 200

        context = family_browser(chromium)
        tab = context.new_page()
        tab.goto(link)
        tab.wait_for_url(re.compile(r"tz=Asia%2FTokyo"))  # the browser's own zone, sent by the page
        assert "Jane" not in tab.content() and "Doe" not in tab.content()
        tomorrow = tomorrow_at("10:00").astimezone(ZoneInfo(FAMILY_ZONE)).strftime("%A %-d %B %Y")
        days = tab.get_by_role("navigation", name="Days")
        if days.get_by_text(tomorrow).count() == 0:  # today in Tokyo (after 11 p.m. there: tomorrow)
            days.get_by_role("link", name=re.compile("Next day")).click()
        days.get_by_text(tomorrow).wait_for()
        tab.get_by_label("10:00 AM").check()
        tab.wait_for_timeout(HUMAN_PAUSE_MS)
        tab.get_by_role("button", name="Book this time").click()
        tab.get_by_text("You are booked").wait_for()
        assert "10:00 AM" in tab.content()

        booked = the_consultation(db)
        assert (booked.lead_id, booked.booked_via, booked.starts_at) == (
            lead["id"],
            "self",
            tomorrow_at("10:00"),
        )
        [confirmation] = wait_for(lambda: mails_with(mailbox, "Your consultation at"), timeout=60)
        change_link = link_in_mail(confirmation)

        tab.goto(change_link)
        tab.wait_for_url(re.compile(r"tz=Asia%2FTokyo"))
        tab.get_by_label("11:00 AM").check()
        tab.wait_for_timeout(HUMAN_PAUSE_MS)
        tab.get_by_role("button", name="Move to this time").click()
        tab.get_by_text("Your consultation is moved").wait_for()
        moved = the_consultation(db)
        assert (moved.starts_at, moved.version, moved.status) == (tomorrow_at("11:00"), 2, "scheduled")
        wait_for(lambda: len(mails_with(mailbox, "Your consultation at")) == 2, timeout=60)
        context.close()

    stranger = chromium.new_context()
    other = stranger.new_page()
    other.goto(f"{urlsplit(link).scheme}://{urlsplit(link).netloc}{page_path(client, tenant)}")
    other.get_by_role("heading", name=re.compile("Book your consultation")).wait_for()
    assert "Jane" not in other.content() and "Doe" not in other.content()
    stranger.close()


def test_at_a_phones_width_by_keyboard_alone_without_serious_violations(
    client, db, tenant, chromium, live_server
):
    bookable_clinic(client, tenant)
    context = family_browser(chromium)
    tab = context.new_page()
    tab.goto(live_server + page_path(client, tenant))
    tab.wait_for_url(re.compile(r"tz=Asia%2FTokyo"))
    assert serious_violations(tab) == []
    assert not tab.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
    for _ in range(20):  # Tab to the first free time
        tab.keyboard.press("Tab")
        if tab.evaluate("document.activeElement.name") == "starts_at":
            break
    else:
        pytest.fail("no free time reached by Tab: the page opened on a day without free times")
    tab.keyboard.press("Space")
    chosen = tab.evaluate("document.activeElement.value")
    for field, value in (("first_name", "Maria"), ("last_name", "Lopez"), ("phone", "(415) 555-0134")):
        while tab.evaluate("document.activeElement.name") != field:
            tab.keyboard.press("Tab")
        tab.keyboard.type(value)
    tab.wait_for_timeout(HUMAN_PAUSE_MS)
    tab.keyboard.press("Enter")
    tab.get_by_text("You are booked").wait_for()
    assert the_consultation(db).starts_at == datetime.fromisoformat(chosen)
    assert serious_violations(tab) == []
    assert not tab.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
    context.close()


@pytest.fixture
def embedder():
    """Another website: a page framing the booking page given as ?src=, on its own port (reached as
    localhost and as 127.0.0.1: two origins)."""

    def site(environ, start_response):
        src = environ.get("QUERY_STRING", "").removeprefix("src=")
        page = f'<!doctype html><title>Clinic site</title><iframe title="booking" src="{src}"></iframe>'
        return Response(page, mimetype="text/html")(environ, start_response)

    server = make_server("127.0.0.1", 0, site, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


def framed(chromium, url: str) -> bool:
    """Whether the booking page rendered inside the other site's iframe."""
    context = chromium.new_context()
    tab = context.new_page()
    tab.goto(url)
    tab.wait_for_load_state("load")
    frame = tab.frames[1]
    rendered = frame.url.startswith("http") and frame.locator("h1").count() == 1
    context.close()
    return rendered


def test_only_the_clinics_own_website_may_frame_the_page(client, tenant, chromium, live_server, embedder):
    bookable_clinic(client, tenant)
    booking = live_server + page_path(client, tenant)
    assert not framed(chromium, f"http://localhost:{embedder}/?src={booking}")  # no origin listed
    page_settings(client, tenant, embed_origins=[f"http://localhost:{embedder}"])
    assert framed(chromium, f"http://localhost:{embedder}/?src={booking}")
    assert not framed(chromium, f"http://127.0.0.1:{embedder}/?src={booking}")  # not the clinic's
