"""The family's booking page over HTTP: a family not yet known books on the clinic's page (a lead
through capture, the consultation self-booked), the bots' refusals (honeypot, too fast, forged), two
families on one slot (one gets it, the other the nearest free times), framing by the clinic's listed
origins only, nothing of a lead on the pages, changes refused past the clinic's cut-off."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.consultations.models import Consultation
from app.domains.lead_messages.booking_link import booking_url
from app.platform import clock
from tests.automation.outreachkit import configure_clinic, lead_with, zone_at_local_hour
from tests.availability.kit import consultation_type, provider, settings
from tests.booking_page.kit import (
    CLINIC_NUMBER,
    FAMILY_ZONE,
    bookable_clinic,
    hidden,
    later,
    page_path,
    page_settings,
    slot_values,
    tomorrow_at,
)
from tests.lead_messages.kit import send
from tests.leadkit import create_lead

FAMILY = {"first_name": "Maria", "last_name": "Lopez", "phone": "(415) 555-0134"}


def open_page(client, path: str, day: datetime | None = None) -> str:
    day = day or tomorrow_at("10:00")
    local_day = day.astimezone(ZoneInfo(FAMILY_ZONE)).date().isoformat()
    resp = client.get(path, query_string={"tz": FAMILY_ZONE, "day": local_day})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_data(as_text=True)


def post_booking(client, path: str, page: str, starts_at: datetime, **extra):
    form = {
        "form_token": hidden(page, "form_token"),
        "type": hidden(page, "type"),
        "tz": FAMILY_ZONE,
        "starts_at": starts_at.isoformat(),
        "website": "",
        **FAMILY,
        **extra,
    }
    return client.post(path, data=form)


def consultations(db) -> list[Consultation]:
    with db.unit_of_work() as session:
        return list(session.scalars(sa.select(Consultation).order_by(Consultation.id)))


def test_a_family_not_known_books_tomorrow_at_ten_in_their_own_timezone(client, db, tenant):
    kind = bookable_clinic(client, tenant)
    path = page_path(client, tenant)
    page = open_page(client, path)
    ten = tomorrow_at("10:00")
    assert ten.isoformat() in slot_values(page) and "10:00 AM" in page and FAMILY_ZONE in page
    with later(4):
        resp = post_booking(client, path, page, ten)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    confirmation = client.get(resp.headers["Location"])
    shown = confirmation.get_data(as_text=True)
    assert confirmation.status_code == 200 and "You are booked" in shown and "10:00 AM" in shown
    [booked] = consultations(db)
    assert (booked.booked_via, booked.type_id, booked.starts_at) == ("self", kind["id"], ten)
    lead = client.get(f"/api/leads/{booked.lead_id}", headers=tenant.headers()).get_json()
    assert (lead["first_name"], lead["last_name"], lead["phone"]) == ("Maria", "Lopez", "+14155550134")
    assert lead["pipeline_stage"] == "consultation_scheduled"


def test_opened_without_a_day_the_page_shows_the_first_day_with_free_times(client, tenant):
    """Opened late in the evening or on a closed day, the page does not say "no free times": it
    opens on the first day the family can book (here the one day in three the doctor works)."""
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    settings(client, tenant, slot_step_minutes=30, min_notice_minutes=0, horizon_days=365, buffer_minutes=0)
    zone = ZoneInfo(client.get("/api/clinic", headers=tenant.headers()).get_json()["timezone"])
    open_day = clock.now().astimezone(zone).date() + timedelta(days=3)
    doctor = provider(client, tenant, hours={open_day.strftime("%a").lower(): ["09:00", "12:00"]})
    consultation_type(client, tenant, [doctor["id"]])
    resp = client.get(page_path(client, tenant), query_string={"tz": FAMILY_ZONE})
    page = resp.get_data(as_text=True)
    starts = [datetime.fromisoformat(v) for v in slot_values(page)]
    assert resp.status_code == 200 and "No free times" not in page
    assert starts and min(starts).astimezone(zone).date() == open_day
    asked_today = client.get(
        page_path(client, tenant), query_string={"tz": FAMILY_ZONE, "day": clock.now().date().isoformat()}
    )
    assert "No free times on this day" in asked_today.get_data(as_text=True)  # a day asked is that day


def test_bots_are_refused_with_a_clear_message(client, db, tenant):
    bookable_clinic(client, tenant)
    path = page_path(client, tenant)
    page = open_page(client, path)
    ten = tomorrow_at("10:00")
    too_fast = post_booking(client, path, page, ten)
    assert too_fast.status_code == 422 and "faster than a person" in too_fast.get_data(as_text=True)
    with later(4):
        trapped = post_booking(client, path, page, ten, website="http://spam.example")
        forged = post_booking(client, path, page, ten, form_token="x" + hidden(page, "form_token"))
        nameless = post_booking(client, path, page, ten, first_name="")
        contactless = post_booking(client, path, page, ten, phone="")
    assert trapped.status_code == 422 and "meant to stay empty" in trapped.get_data(as_text=True)
    assert forged.status_code == 422 and "reload the page" in forged.get_data(as_text=True)
    assert nameless.status_code == 422 and "First name: required" in nameless.get_data(as_text=True)
    assert contactless.status_code == 422 and "a phone number or an email" in contactless.get_data(
        as_text=True
    )
    with later(2 * 3600):
        stale = post_booking(client, path, page, ten)
    assert stale.status_code == 422 and "open too long" in stale.get_data(as_text=True)
    with later(4):
        far = post_booking(client, path, page, datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
    assert far.status_code == 422 and "Starts at: choose a time" in far.get_data(as_text=True)
    assert consultations(db) == []
    assert client.get(f"/book/{'x' * 24}").status_code == 404  # no such page: a page saying so
    for day in ("0001-01-01", "9999-12-31", "not-a-day"):  # today's times instead, never an error
        assert client.get(path, query_string={"day": day, "tz": "No/Such_Zone"}).status_code == 200


def test_two_families_on_one_slot_one_gets_it_the_other_sees_the_nearest(app, client, db, tenant):
    bookable_clinic(client, tenant)
    path = page_path(client, tenant)
    pages = [open_page(client, path), open_page(client, path)]
    ten = tomorrow_at("10:00")
    answers, start = [None, None], threading.Barrier(2)

    def family(index: int) -> None:
        start.wait()
        names = {"first_name": f"Family{index}", "phone": f"(415) 555-01{index}0"}
        answers[index] = post_booking(app.test_client(), path, pages[index], ten, **names)

    threads = [threading.Thread(target=family, args=(i,)) for i in range(2)]
    with later(4):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [303, 409], [a.get_data(as_text=True)[:400] for a in answers]
    loser = next(a for a in answers if a.status_code == 409).get_data(as_text=True)
    offered = slot_values(loser)
    assert "just taken" in loser and offered and ten.isoformat() not in offered
    assert tomorrow_at("11:00").isoformat() in offered or tomorrow_at("09:00").isoformat() in offered
    assert [c.starts_at for c in consultations(db)] == [ten]


def test_framed_only_by_the_clinics_own_origins(client, tenant):
    bookable_clinic(client, tenant)
    path = page_path(client, tenant)
    closed = client.get(path)
    assert "frame-ancestors 'none'" in closed.headers["Content-Security-Policy"]
    assert closed.headers["X-Frame-Options"] == "DENY" and closed.headers["Cache-Control"] == "no-store"
    listed = page_settings(client, tenant, embed_origins=["https://www.smile.example/"])
    assert listed["embed_origins"] == ["https://www.smile.example"]
    open_to_site = client.get(path)
    assert "frame-ancestors https://www.smile.example" in open_to_site.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in open_to_site.headers
    for bad in (["javascript:alert(1)"], ["https://a.example/page"], ["https://a.example; script-src *"]):
        refused = client.put(
            "/api/booking-page/settings", json={"embed_origins": bad}, headers=tenant.headers()
        )
        assert refused.status_code == 422 and "embed_origins" in refused.get_json()["errors"]["json"]
    assert (
        client.put(
            "/api/booking-page/settings",
            json={"change_cutoff_hours": 2},
            headers=tenant.headers("front_desk"),
        ).status_code
        == 403
    )


def test_the_pages_show_nothing_of_a_lead(app, client, tenant):
    bookable_clinic(client, tenant)
    lead = create_lead(client, tenant, first_name="Quentin", last_name="Zed", email="qz@example.com")
    link = booking_url(app.config["SETTINGS"], tenant.id, lead["id"], clock.now())
    own = client.get(urlsplit(link).path, query_string={"tz": FAMILY_ZONE}).get_data(as_text=True)
    public = client.get(page_path(client, tenant)).get_data(as_text=True)
    for shown in (own, public):
        assert "Quentin" not in shown and "Zed" not in shown and "qz@example.com" not in shown
    assert 'name="first_name"' in public and 'name="first_name"' not in own  # the link knows who books
    assert client.get(urlsplit(link).path[:-2] + "xx").status_code == 404


def test_past_the_cutoff_the_family_is_told_to_call(client, db, tenant):
    bookable_clinic(client, tenant)
    path = page_path(client, tenant)
    page = open_page(client, path)
    with later(4):
        booked = post_booking(client, path, page, tomorrow_at("10:00") + timedelta(days=3))
    manage_path = urlsplit(booked.headers["Location"]).path
    manage = client.get(manage_path, query_string={"tz": FAMILY_ZONE}).get_data(as_text=True)
    assert "Cancel my consultation" in manage  # four days ahead: within the 24-hour cut-off
    page_settings(client, tenant, change_cutoff_hours=24 * 5)  # the clinic asks for five days
    with later(4):
        cancel = client.post(manage_path, data={"do": "cancel", "form_token": hidden(manage, "form_token")})
    assert cancel.status_code == 422 and "please call the clinic" in cancel.get_data(as_text=True)
    again = client.get(manage_path).get_data(as_text=True)
    assert "please call" in again and "Cancel my consultation" not in again
    assert [c.status for c in consultations(db)] == ["scheduled"]


def test_posts_are_limited_per_address(client, tenant):
    bookable_clinic(client, tenant)
    path = page_path(client, tenant)
    page = open_page(client, path)
    with later(4):
        answers = [
            post_booking(client, path, page, tomorrow_at("10:00"), first_name="").status_code
            for _ in range(11)
        ]
    assert answers[:10] == [422] * 10 and answers[10] == 429
    refused = post_booking(client, path, page, tomorrow_at("10:00"))
    assert refused.status_code == 429 and "Too many tries" in refused.get_data(as_text=True)
    assert client.get(path).status_code == 200  # reading the page is not what is limited


def test_the_bookings_report_counts_links_sent_against_bookings_through_them(client, tenant):
    bookable_clinic(client, tenant)
    booker = lead_with(client, tenant, phone="(415) 555-0101", timezone=zone_at_local_hour(12))
    silent = lead_with(client, tenant, phone="(415) 555-0102", timezone=zone_at_local_hour(12))
    body = "Book your free consultation: {{ booking_link }}"
    sent = {
        lead["id"]: send(client, tenant, lead["id"], channel="sms", body=body) for lead in (booker, silent)
    }
    send(client, tenant, booker["id"], channel="sms", body="Hi {{ first_name }}, no link here")
    send(client, tenant, booker["id"], channel="sms", body="Still keen? {{ booking_link }}")
    link = re.search(r"https?://\S+", sent[booker["id"]]["body"]).group(0)
    page = open_page(client, urlsplit(link).path)
    with later(4):
        booked = post_booking(client, urlsplit(link).path, page, tomorrow_at("10:00"))
    assert booked.status_code == 303
    public = page_path(client, tenant)
    public_page = open_page(client, public)  # a family sent no link: self-booked, not the link's
    with later(4):
        assert post_booking(client, public, public_page, tomorrow_at("12:00")).status_code == 303
    today = clock.now().date()
    answer = client.get(
        "/api/leads/analytics/bookings",
        query_string={"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()},
        headers=tenant.headers(),
    ).get_json()
    assert answer["booking_link"] == {
        "messages_sent": 3,
        "leads_sent": 2,
        "leads_booked": 1,
        "conversion": 0.5,
        "booked_through_link": 1,
    }
    assert answer["self_booked"] == 2


def test_a_lost_leads_link_says_to_call_and_names_nobody(app, client, db, tenant):
    bookable_clinic(client, tenant)
    lead = create_lead(client, tenant, first_name="Quentin", last_name="Zed")
    lost = client.post(
        f"/api/leads/{lead['id']}/stage",
        json={"stage": "lost", "reason": "CHOSE_COMPETITOR"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert lost.status_code == 200, lost.get_json()
    path = urlsplit(booking_url(app.config["SETTINGS"], tenant.id, lead["id"], clock.now())).path
    page = open_page(client, path)
    with later(4):
        refused = post_booking(client, path, page, tomorrow_at("10:00"))
    shown = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "please call the clinic" in shown
    assert f"lead {lead['id']}" not in shown and "Quentin" not in shown
    assert consultations(db) == []


def test_a_clinic_with_several_types_lets_the_family_choose(client, db, tenant):
    first = bookable_clinic(client, tenant)
    doctor_id = first["provider_ids"][0]
    short = consultation_type(client, tenant, [doctor_id], name="Quick check", duration_minutes=30)
    path = page_path(client, tenant)
    page = open_page(client, path)
    assert "New patient consultation (60 min)" in page and "Quick check (30 min)" in page
    assert hidden(page, "type") == str(first["id"])
    day = tomorrow_at("10:00").astimezone(ZoneInfo(FAMILY_ZONE)).date().isoformat()
    chosen = client.get(path, query_string={"tz": FAMILY_ZONE, "day": day, "type": short["id"]})
    shown = chosen.get_data(as_text=True)
    assert hidden(shown, "type") == str(short["id"])
    with later(4):
        booked = post_booking(client, path, shown, tomorrow_at("10:30"))
    assert booked.status_code == 303
    [visit] = consultations(db)
    assert (visit.type_id, visit.duration_minutes) == (short["id"], 30)
