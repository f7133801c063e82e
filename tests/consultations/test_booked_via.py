"""How each consultation was booked (staff, the booking system's webhook, the family itself), and the
reports a clinic reads it in: bookings by way, hours from capture to a lead's first booking, and the
show rate by way."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.domains.consultations import service as consultations
from app.domains.consultations.booking import by_family
from app.platform import clock
from tests.console.test_console_pages import log_in
from tests.consultations.kit import act, book, post_appointment
from tests.leadkit import create_lead

DAY = timedelta(days=1)


@pytest.fixture
def at(monkeypatch):
    """Move the web edge's clock to a chosen moment (the requests that follow happen then)."""

    def move(moment):
        monkeypatch.setattr(clock, "now", lambda: moment)

    return move


def webhook_booking(client, tenant, lead_id: int, starts_at, external_id: str) -> dict:
    event = {
        "external_id": external_id,
        "status": "booked",
        "occurred_at": clock.now().isoformat(),
        "starts_at": starts_at.isoformat(),
        "lead_id": lead_id,
    }
    # Signed as of the moved clock (the signature's time is checked against it).
    resp = post_appointment(client, tenant.clinic, event, timestamp=int(clock.now().timestamp()))
    assert resp.status_code == 201, resp.get_json()
    return client.get(
        f"/api/consultations/{resp.get_json()['consultation_id']}", headers=tenant.headers("front_desk")
    ).get_json()


def report(client, tenant, name: str, start, end) -> dict:
    resp = client.get(
        f"/api/leads/analytics/{name}",
        query_string={"from": start.isoformat(), "to": end.isoformat()},
        headers=tenant.headers(),
    )
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def plant(client, tenant, at) -> dict:
    """Three leads captured at t0: staff books the first 2 hours later (attended) and the second 4
    hours later (and again a day later: not its first booking); the booking system books the third
    10 hours later (missed). Returns the moments."""
    t0 = clock.now() - 5 * DAY
    at(t0)
    first, second, third = (create_lead(client, tenant, phone=f"(415) 555-30{n}0") for n in range(3))
    starts = t0 + 2 * DAY
    at(t0 + timedelta(hours=2))
    attended = book(client, tenant, first["id"], starts)
    at(t0 + timedelta(hours=4))
    book(client, tenant, second["id"], starts + timedelta(hours=1))
    at(t0 + timedelta(hours=10))
    missed = webhook_booking(client, tenant, third["id"], starts + timedelta(hours=2), "pms-1")
    at(t0 + DAY + timedelta(hours=4))
    book(client, tenant, second["id"], starts + timedelta(hours=3))
    assert (attended["booked_via"], missed["booked_via"]) == ("staff", "webhook")
    at(starts + timedelta(hours=4))
    act(client, tenant, attended["id"], "check-in")
    act(client, tenant, missed["id"], "no-show")
    return {"t0": t0, "end": starts + 5 * DAY}


def test_staff_and_webhook_bookings_show_in_the_report_by_way(client, tenant, at):
    moments = plant(client, tenant, at)
    bookings = report(client, tenant, "bookings", moments["t0"], moments["end"])
    assert (bookings["booked"], bookings["staff_booked"], bookings["webhook_booked"]) == (4, 3, 1)
    assert bookings["self_booked"] == 0
    # First bookings 2 h and 4 h after capture by staff, 10 h by the webhook: median of the three
    # 4 h, p90 (nearest rank) 10 h; the second lead's rebooking a day later is not a first booking.
    assert bookings["time_to_booking"] == {"first_bookings": 3, "median_hours": 4.0, "p90_hours": 10.0}
    by_way = {row["booked_via"]: row for row in bookings["rows"]}
    assert by_way["staff"] == {
        "booked_via": "staff",
        "booked": 3,
        "share": 0.75,
        "first_bookings": 2,
        "median_hours_to_booking": 3.0,
        "p90_hours_to_booking": 4.0,
    }
    assert by_way["webhook"]["booked"] == 1 and by_way["webhook"]["median_hours_to_booking"] == 10.0
    assert by_way["self"]["booked"] == 0 and by_way["self"]["median_hours_to_booking"] is None

    # A range after the bookings counts none of them.
    later = report(client, tenant, "bookings", moments["end"], moments["end"] + DAY)
    assert later["booked"] == 0 and later["time_to_booking"]["median_hours"] is None


def test_the_show_rate_by_way_counts_an_attended_and_a_no_show(client, tenant, at):
    moments = plant(client, tenant, at)
    shown = report(client, tenant, "consultations", moments["t0"], moments["end"])
    assert sorted(shown["by"]["booked_via"], key=lambda row: row["key"]) == [
        {"key": "staff", "due": 1, "attended": 1, "no_show": 0, "show_rate": 1.0},
        {"key": "webhook", "due": 1, "attended": 0, "no_show": 1, "show_rate": 0.0},
    ]
    csv = client.get(
        "/api/leads/analytics/bookings",
        query_string={"from": moments["t0"].isoformat(), "to": moments["end"].isoformat()},
        headers={**tenant.headers(), "Accept": "text/csv"},
    )
    lines = csv.get_data(as_text=True).splitlines()
    assert csv.status_code == 200 and lines[0].startswith("booked_via,booked,share")
    assert any(line.startswith("staff,3,0.75") for line in lines)
    refused = client.get("/api/leads/analytics/bookings", headers=tenant.headers("front_desk"))
    assert refused.status_code == 403


def test_a_family_booking_on_its_page_is_self_booked(client, db, tenant):
    """The booking page (to come) books through booking.by_family: a self booking."""
    lead = create_lead(client, tenant)
    now = clock.now()
    with db.unit_of_work() as session:
        booked = by_family.book_by_family(
            session=session,
            clinic_id=tenant.clinic.id,
            lead_id=lead["id"],
            booking=consultations.Booking(starts_at=now + 2 * DAY),
            now=now,
        )
        consultation_id = booked.id
    seen = client.get(f"/api/consultations/{consultation_id}", headers=tenant.headers("front_desk"))
    assert seen.get_json()["booked_via"] == "self" and seen.get_json()["status"] == "scheduled"
    bookings = report(client, tenant, "bookings", now - DAY, now + DAY)
    assert (bookings["self_booked"], bookings["staff_booked"]) == (1, 0)
    lead_now = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert lead_now["pipeline_stage"] == "consultation_scheduled"


def test_the_console_shows_bookings_by_way(app, client, tenant, at):
    plant(client, tenant, at)  # the console's last 30 days, as of the last step, hold every booking
    with app.test_client() as console:
        log_in(console, tenant)
        html = console.get("/console/analytics?days=30").get_data(as_text=True)
    part = " ".join(html.split('<section id="bookings">')[1].split("</section>")[0].split())
    assert "<td>staff</td><td>3</td>" in part and "<td>webhook</td><td>1</td>" in part
