"""Bookings cannot be stuffed (issue 73 item 6), over HTTP: a form stamp books once, a lead's link
holds one upcoming visit (booking again moves it), the clinic's page takes a limited number of
bookings an hour whatever the address, absurd ids are a 404, and a time the page never offered is
"not available", not "just taken"."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from app.domains.lead_messages.booking_link import booking_url
from app.platform import clock
from tests.booking_page.kit import bookable_clinic, later, page_path, page_settings, slot_values, tomorrow_at
from tests.booking_page.test_page import consultations, open_page, post_booking
from tests.leadkit import create_lead


def test_a_form_posted_again_does_not_book_again(client, db, tenant):
    bookable_clinic(client, tenant)
    path = page_path(client, tenant)
    page = open_page(client, path)
    with later(4):
        first = post_booking(client, path, page, tomorrow_at("10:00"))
        replay = post_booking(client, path, page, tomorrow_at("11:00"))
    assert first.status_code == 303
    shown = replay.get_data(as_text=True)
    assert replay.status_code == 422 and "this form was sent already" in shown, shown[:400]
    assert [c.starts_at for c in consultations(db)] == [tomorrow_at("10:00")]


def test_booking_again_through_the_link_moves_the_visit(app, client, db, tenant):
    """Past the clinic's cut-off the family's link moves the visit it holds; inside it, the family is
    told to call."""
    bookable_clinic(client, tenant)
    # Tomorrow at 10 in Tokyo is 10 to 34 hours away, by when the test runs; four days on is 82 or more
    page_settings(client, tenant, change_cutoff_hours=36)
    lead = create_lead(client, tenant, first_name="Ana", phone="(415) 555-0177")
    path = urlsplit(booking_url(app.config["SETTINGS"], tenant.id, lead["id"], clock.now())).path
    ten, noon = (tomorrow_at(hhmm) + timedelta(days=3) for hhmm in ("10:00", "12:00"))
    first_page = open_page(client, path, ten)
    with later(4):
        booked = post_booking(client, path, first_page, ten)
    assert booked.status_code == 303
    second_page = open_page(client, path, ten)
    with later(4):
        again = post_booking(client, path, second_page, noon)
    assert again.status_code == 303, again.get_data(as_text=True)[400:1000]
    confirmation = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "12:00 PM" in confirmation
    [visit] = consultations(db)
    assert (visit.status, visit.starts_at, visit.lead_id) == ("scheduled", noon, lead["id"])
    assert ten.isoformat() in slot_values(open_page(client, path, ten))  # the old time is free again
    listed = client.get(f"/api/leads/{lead['id']}/consultations", headers=tenant.headers()).get_json()
    assert [c["status"] for c in listed] == ["scheduled"]
    visit_tomorrow = tomorrow_at("10:00")
    third_page = open_page(client, path, ten)
    with later(4):
        moved_close = post_booking(client, path, third_page, visit_tomorrow)
    assert moved_close.status_code == 303  # moved in, inside the cut-off now
    fourth_page = open_page(client, path, ten)
    with later(4):
        refused = post_booking(client, path, fourth_page, ten)
    assert refused.status_code == 422 and "please call the clinic" in refused.get_data(as_text=True)
    assert [(c.status, c.starts_at) for c in consultations(db)] == [("scheduled", visit_tomorrow)]


def test_the_clinics_page_takes_a_limited_number_of_bookings_an_hour(client, db, tenant, monkeypatch):
    monkeypatch.setattr(db.settings, "booking_page_bookings_per_hour", 2)
    bookable_clinic(client, tenant)
    path = page_path(client, tenant)
    answers = []
    for index, hhmm in enumerate(("09:00", "10:00", "11:00")):
        page = open_page(client, path)
        with later(4):
            family = {"first_name": f"Family{index}", "phone": f"(415) 555-01{index}1"}
            answers.append(post_booking(client, path, page, tomorrow_at(hhmm), **family))
    assert [a.status_code for a in answers] == [303, 303, 429]
    assert "please call the clinic" in answers[2].get_data(as_text=True)
    assert len(consultations(db)) == 2


def test_absurd_ids_are_not_found_never_an_error(client, db, tenant):
    bookable_clinic(client, tenant)
    path = page_path(client, tenant)
    page = open_page(client, path)
    absurd = ("99999999999999999999", str(2**31), str(2**63), "abc", "-1", "1e3", "٣")
    with later(4):
        posted = [post_booking(client, path, page, tomorrow_at("10:00"), type=raw) for raw in absurd]
    assert [a.status_code for a in posted] == [404] * len(absurd)
    assert "no such consultation type" in posted[0].get_data(as_text=True)
    asked = [client.get(path, query_string={"type": raw}).status_code for raw in absurd]
    assert asked == [404] * len(absurd)
    assert consultations(db) == []


def test_a_time_never_offered_is_not_available_rather_than_taken(client, db, tenant):
    bookable_clinic(client, tenant)
    path = page_path(client, tenant)
    page = open_page(client, path)
    never = (tomorrow_at("10:15"), clock.now().replace(microsecond=0) - timedelta(hours=2))
    with later(4):
        posted = [post_booking(client, path, page, at) for at in never]
    for answer in posted:
        shown = answer.get_data(as_text=True)
        assert answer.status_code == 422 and "That time is not available" in shown, shown[:400]
        assert "just taken" not in shown
    assert consultations(db) == []
