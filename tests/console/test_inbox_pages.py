"""The team inbox pages through Flask's test client: who may open them, the tabs and filters in the
URL as the API reads them (a bad one is a 422 naming the field), a thread marked read as it opens
(the nav's count falls), a reply through the API's reply, the PHI policy on texts and photos, an
unknown sender linked to a lead or captured as a new one, and another clinic's thread a 404. The
browser journeys (live rows, inline photos) are in test_inbox_journeys.py."""

from __future__ import annotations

import re

import pytest

from tests.automation.outreachkit import configure_clinic, enroll, lead_with, make_sequence, sms
from tests.console.test_console_pages import csrf_of, log_in
from tests.conversations.test_conversations import thread
from tests.conversations.test_media import PHOTO, mms
from tests.intake.test_twilio import AUTH_TOKEN, CLINIC_NUMBER, INBOUND, PHONE, signed_post, text
from tests.leadkit import create_lead
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import FAST_DELIVERY, sms_settings, use
from tests.stream.kit import only_assignee


@pytest.fixture
def providers(app, monkeypatch):
    settings = app.config["SETTINGS"]
    with sms_provider(token=AUTH_TOKEN) as (provider, url):
        provider.numbers.add(CLINIC_NUMBER)
        use(monkeypatch, settings, **FAST_DELIVERY, **sms_settings(url, token=AUTH_TOKEN))
        yield provider, settings


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def nav_count(console) -> int:
    resp = console.get("/console/inbox/count")
    assert resp.status_code == 200
    return resp.get_json()["unread"]


def enrolled_lead(client, tenant) -> int:
    """A lead in an active sequence (its first step days away) that the coordinator wrote to."""
    lead = create_lead(client, tenant, first_name="Ben", last_name="Park", phone="(415) 555-0177")
    sequence = make_sequence(client, tenant, [sms(amount=3, unit="days")])
    enroll(client, tenant, lead["id"], sequence["id"])
    sent = client.post(
        f"/api/leads/{lead['id']}/conversation/messages",
        json={"channel": "sms", "body": "Hello from the clinic"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert sent.status_code == 201, sent.get_json()
    return lead["id"]


def unknown_sender(client, tenant, sender: str = "+14155559870") -> int:
    """An unknown sender's thread (a text from a number no lead has): its conversation id."""
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    assert (
        signed_post(client, INBOUND, text("Hi, I saw your ad", sid="SMu0", sender=sender)).status_code == 200
    )
    rows = client.get("/api/conversations?view=unassigned", headers=tenant.headers()).get_json()["items"]
    return next(row["id"] for row in rows if row["lead"] is None)


def test_an_anonymous_visitor_is_sent_to_log_in(console):
    for path in ("/console/inbox", "/console/inbox/leads/1", "/console/inbox/unknown/1"):
        resp = console.get(path)
        assert resp.status_code == 302 and "/console/login" in resp.headers["Location"], path


def test_a_coordinators_inbox_thread_read_mark_and_reply(app, client, console, tenant, providers):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    only_assignee(app, tenant, "treatment_coordinator")
    lead = lead_with(client, tenant, phone=PHONE, first_name="Maria", last_name="Lopez")
    enrolled = enrolled_lead(client, tenant)
    assert signed_post(client, INBOUND, text("Is Tuesday free?", sid="SMi1")).status_code == 200

    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/inbox?view=mine").get_data(as_text=True)
    row = re.search(rf'<li class="inbox-row unread"[^>]*data-lead="{lead["id"]}".*?</li>', html, re.S)
    assert row, html
    assert "Maria Lopez" in row.group(0) and "Is Tuesday free?" in row.group(0)
    assert "1 unread" in row.group(0) and "In sequence" not in row.group(0)  # her reply ended none
    labelled = re.search(rf'data-lead="{enrolled}".*?</li>', html, re.S)
    assert labelled and "In sequence" in labelled.group(0)
    assert nav_count(console) == 1
    unread_only = console.get("/console/inbox?view=mine&unread=true")
    assert unread_only.status_code == 200 and "Maria Lopez" in unread_only.get_data(as_text=True)
    assert "Maria" not in console.get("/console/inbox?view=unassigned").get_data(as_text=True)
    assert "Maria" not in console.get("/console/inbox?channel=email").get_data(as_text=True)

    opened = console.get(f"/console/inbox/leads/{lead['id']}")
    assert opened.status_code == 200 and "Is Tuesday free?" in opened.get_data(as_text=True)
    assert nav_count(console) == 0  # opening it marked it read
    assert thread(client, tenant, lead["id"], role="treatment_coordinator")["unread"] == 0
    assert "1 unread" not in console.get("/console/inbox?view=mine").get_data(as_text=True)
    unread_only = console.get("/console/inbox?view=mine&unread=true")
    assert unread_only.status_code == 200 and "Maria Lopez" not in unread_only.get_data(as_text=True)
    assert "No conversations here with unread messages" in unread_only.get_data(as_text=True)

    page = opened.get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    form = {"csrf_token": csrf_of(page), "idempotency_key": key, "channel": "sms", "body": "Yes, 3 pm?"}
    for _ in range(2):  # a double submit sends once
        resp = console.post(f"/console/inbox/leads/{lead['id']}/reply", data=form)
        assert resp.status_code == 303
    bodies = [m["body"] for m in thread(client, tenant, lead["id"])["items"]]
    assert bodies == ["Yes, 3 pm?", "Is Tuesday free?"]
    empty = console.post(
        f"/console/inbox/leads/{lead['id']}/reply", data={**form, "body": "", "idempotency_key": "k2"}
    )
    assert empty.status_code == 422 and 'id="err-body"' in empty.get_data(as_text=True)


def test_a_bad_filter_is_a_422_naming_it(console, tenant):
    log_in(console, tenant, role="treatment_coordinator")
    resp = console.get("/console/inbox?channel=fax")
    assert resp.status_code == 422 and 'id="err-channel"' in resp.get_data(as_text=True)


def _photo(client, tenant, providers) -> tuple[dict, str]:
    """A lead whose family sent a photo by MMS; the console's URL of the photo."""
    provider, settings = providers
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    photo_url = provider.add_media(settings.sms_api_url, "MMp1", PHOTO, "image/png")
    assert signed_post(client, INBOUND, mms("Her smile", "MMp1", (photo_url, "image/png"))).status_code == 200
    message_id = thread(client, tenant, lead["id"])["items"][0]["id"]
    return lead, f"/console/inbox/leads/{lead['id']}/messages/{message_id}/media/0"


def test_a_coordinator_sees_the_familys_photo_inline(client, console, tenant, providers):
    lead, media = _photo(client, tenant, providers)
    log_in(console, tenant, role="treatment_coordinator")
    page = console.get(f"/console/inbox/leads/{lead['id']}").get_data(as_text=True)
    assert f'<img class="media" src="{media}"' in page and "Her smile" in page
    assert providers[0].media_fetches == 0  # the page names the console's URL, not the provider's
    fetched = console.get(media)
    assert fetched.status_code == 200 and fetched.data == PHOTO and fetched.mimetype == "image/png"


def test_front_desk_sees_no_texts_nor_photos(client, console, tenant, providers):
    lead, media = _photo(client, tenant, providers)
    log_in(console, tenant, role="front_desk")
    listed = console.get("/console/inbox").get_data(as_text=True)
    assert "Her smile" not in listed and "message text hidden" in listed
    page = console.get(f"/console/inbox/leads/{lead['id']}").get_data(as_text=True)
    assert "Her smile" not in page and "<img" not in page and "Image attached" in page
    assert console.get(media).status_code == 403


def test_another_clinics_thread_and_photo_are_404(client, console, tenant, make_tenant, providers):
    lead, media = _photo(client, tenant, providers)
    other = make_tenant("Other Orthodontics")
    log_in(console, other, role="treatment_coordinator")
    assert console.get(media).status_code == 404
    assert console.get(f"/console/inbox/leads/{lead['id']}").status_code == 404
    assert "Her smile" not in console.get("/console/inbox").get_data(as_text=True)


def test_an_unknown_sender_is_linked_to_a_lead_found_by_name(client, console, tenant, providers):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone="(415) 555-2671", first_name="Rosa", last_name="Diaz")
    signed_post(client, INBOUND, text("Hi, I saw your ad", sid="SMu1", sender="+14155559876"))
    log_in(console, tenant, role="treatment_coordinator")
    html = console.get("/console/inbox?view=unassigned").get_data(as_text=True)
    assert "Unknown sender" in html and "••• 9876" in html and "+14155559876" not in html
    conversation_id = int(re.search(r"/console/inbox/unknown/(\d+)", html).group(1))

    found = console.get(f"/console/inbox/unknown/{conversation_id}?q=Rosa").get_data(as_text=True)
    assert "Rosa Diaz" in found and "Hi, I saw your ad" in found
    resp = console.post(
        f"/console/inbox/unknown/{conversation_id}/link",
        data={"csrf_token": csrf_of(found), "lead_id": lead["id"]},
    )
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/console/inbox/leads/{lead['id']}")
    assert [m["body"] for m in thread(client, tenant, lead["id"])["items"]] == ["Hi, I saw your ad"]
    assert console.get(f"/console/inbox/unknown/{conversation_id}").status_code == 404


def test_an_unknown_sender_is_captured_as_a_new_lead(client, console, tenant, providers):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    signed_post(client, INBOUND, text("Do you do Invisalign for teens?", sid="SMc1", sender="+14155559877"))
    log_in(console, tenant, role="front_desk")
    html = console.get("/console/inbox?view=unassigned").get_data(as_text=True)
    conversation_id = int(re.search(r"/console/inbox/unknown/(\d+)", html).group(1))
    page = console.get(f"/console/inbox/unknown/{conversation_id}").get_data(as_text=True)
    refused = console.post(
        f"/console/inbox/unknown/{conversation_id}/capture",
        data={"csrf_token": csrf_of(page), "last_name": "Lopez"},
    )
    assert refused.status_code == 422 and 'id="err-first_name"' in refused.get_data(as_text=True)
    resp = console.post(
        f"/console/inbox/unknown/{conversation_id}/capture",
        data={"csrf_token": csrf_of(page), "first_name": "Ana", "last_name": "Lopez"},
    )
    assert resp.status_code == 303
    lead_id = int(re.search(r"/console/inbox/leads/(\d+)", resp.headers["Location"]).group(1))
    [message] = thread(client, tenant, lead_id)["items"]
    assert message["body"] == "Do you do Invisalign for teens?"
    leads = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    assert leads["phone"] == "+14155559877" and leads["first_name"] == "Ana"


def test_a_role_that_may_not_change_a_lead_may_not_link_a_sender(client, console, tenant, providers):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    signed_post(client, INBOUND, text("Hello?", sid="SMr1", sender="+14155559878"))
    log_in(console, tenant, role="front_desk")
    html = console.get("/console/inbox?view=unassigned").get_data(as_text=True)
    conversation_id = int(re.search(r"/console/inbox/unknown/(\d+)", html).group(1))
    page = console.get(f"/console/inbox/unknown/{conversation_id}").get_data(as_text=True)
    assert "Link to a lead" not in page and "Capture as a new lead" in page
    resp = console.post(
        f"/console/inbox/unknown/{conversation_id}/link",
        data={"csrf_token": csrf_of(page), "lead_id": lead["id"]},
    )
    assert resp.status_code == 403
    assert thread(client, tenant, lead["id"])["items"] == []


def test_a_role_without_lead_read_is_refused_the_inbox(console, tenant):
    log_in(console, tenant, role="doctor")  # analytics and PHI, but no leads to work
    for path in ("/console/inbox", "/console/inbox/count", "/console/inbox/leads/1"):
        assert console.get(path).status_code == 403, path
    assert 'id="nav-inbox"' not in console.get("/console/analytics").get_data(as_text=True)
