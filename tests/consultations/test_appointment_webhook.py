"""A booking system's signed appointment events: create, move and cancel a consultation once each,
in whatever order they arrive; the lead's stage moves once; the coordinator's calendar shows it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from icalendar import Calendar

from app.platform import clock
from tests.consultations.kit import book, consultation, post_appointment
from tests.leadkit import create_lead, signed_headers


def event(lead_id: int, status: str, occurred: datetime, starts_at: datetime | None = None, **extra) -> dict:
    body = {"external_id": "apt-1", "status": status, "occurred_at": occurred.isoformat(), "lead_id": lead_id}
    if starts_at is not None:
        body["starts_at"] = starts_at.isoformat()
    return {**body, **extra}


def consultations_of(client, tenant, lead_id: int) -> list[dict]:
    resp = client.get(f"/api/leads/{lead_id}/consultations", headers=tenant.headers("front_desk"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def stage_of(client, tenant, lead_id: int) -> str:
    return client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()["pipeline_stage"]


def test_the_webhook_creates_moves_and_cancels_once_each(client, db, tenant):
    lead = create_lead(client, tenant)
    t0, start = clock.now(), clock.now() + timedelta(days=5)
    booked = event(lead["id"], "booked", t0, start, location="Main office", provider_name="Dr. Lee")
    created = post_appointment(client, tenant.clinic, booked)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["status"] == "scheduled" and created.get_json()["applied"] is True
    # The booking system sends it again (signed anew: a replayed signature is refused).
    again = post_appointment(client, tenant.clinic, booked, timestamp=int(time.time()) - 7)
    assert again.status_code == 200 and again.get_json()["applied"] is False
    [row] = consultations_of(client, tenant, lead["id"])
    assert row["external_id"] == "apt-1" and row["location"] == "Main office" and row["version"] == 1
    assert stage_of(client, tenant, lead["id"]) == "consultation_scheduled"

    new_time = event(lead["id"], "rescheduled", t0 + timedelta(minutes=5), start + timedelta(days=1))
    moved = post_appointment(client, tenant.clinic, new_time)
    assert moved.status_code == 200 and moved.get_json()["applied"] is True
    [row] = consultations_of(client, tenant, lead["id"])
    assert row["version"] == 2 and datetime.fromisoformat(row["starts_at"]) == start + timedelta(days=1)

    cancelled = post_appointment(
        client, tenant.clinic, event(lead["id"], "cancelled", t0 + timedelta(minutes=9))
    )
    assert cancelled.get_json() == {"consultation_id": row["id"], "status": "cancelled", "applied": True}
    # The reschedule arriving again late (older than the cancel) changes nothing.
    old_news = event(lead["id"], "rescheduled", t0 + timedelta(minutes=5), start + timedelta(days=2))
    late = post_appointment(client, tenant.clinic, old_news)
    assert late.get_json()["applied"] is False and late.get_json()["status"] == "cancelled"
    assert consultation(db, row["id"]).version == 2
    assert len(consultations_of(client, tenant, lead["id"])) == 1


def test_a_cancel_before_its_booking_arrives_wins_and_nothing_is_confirmed(client, db, tenant):
    lead = create_lead(client, tenant)
    t0, start = clock.now(), clock.now() + timedelta(days=5)
    first = post_appointment(
        client, tenant.clinic, event(lead["id"], "cancelled", t0 + timedelta(minutes=1), start)
    )
    assert first.status_code == 201 and first.get_json()["status"] == "cancelled"
    booked_late = post_appointment(client, tenant.clinic, event(lead["id"], "booked", t0, start))
    assert booked_late.status_code == 200 and booked_late.get_json()["applied"] is False
    [row] = consultations_of(client, tenant, lead["id"])
    assert row["status"] == "cancelled"


def test_an_attended_event_first_checks_in_and_moves_the_stage_once(client, db, tenant):
    lead = create_lead(client, tenant)
    t0 = clock.now()
    start = t0 - timedelta(minutes=30)
    first = post_appointment(client, tenant.clinic, event(lead["id"], "attended", t0, start))
    assert first.status_code == 201 and first.get_json()["status"] == "attended"
    assert stage_of(client, tenant, lead["id"]) == "consultation_completed"
    booked_late = post_appointment(
        client, tenant.clinic, event(lead["id"], "booked", t0 - timedelta(hours=1), start)
    )
    assert booked_late.get_json()["applied"] is False
    assert stage_of(client, tenant, lead["id"]) == "consultation_completed"  # never back


def test_the_webhook_finds_the_lead_by_phone_and_refuses_bad_input_and_bad_signatures(
    client, tenant, make_tenant
):
    lead = create_lead(client, tenant, phone="(415) 555-2671")
    by_phone = {**event(lead["id"], "booked", clock.now(), clock.now() + timedelta(days=2)), "lead_id": None}
    del by_phone["lead_id"]
    resp = post_appointment(
        client, tenant.clinic, {**by_phone, "external_id": "apt-phone", "phone": "+14155552671"}
    )
    assert resp.status_code == 201, resp.get_json()
    assert consultations_of(client, tenant, lead["id"])[0]["external_id"] == "apt-phone"
    unknown = post_appointment(
        client, tenant.clinic, {**by_phone, "external_id": "apt-x", "phone": "+14155550999"}
    )
    assert unknown.status_code == 404
    no_start = post_appointment(
        client, tenant.clinic, event(lead["id"], "booked", clock.now(), external_id="apt-2")
    )
    assert no_start.status_code == 422 and "starts_at" in str(no_start.get_json())
    bad_status = post_appointment(client, tenant.clinic, event(lead["id"], "maybe", clock.now(), clock.now()))
    assert bad_status.status_code == 422 and "status" in str(bad_status.get_json()["errors"])
    other = make_tenant("Other Clinic")
    theirs = post_appointment(client, other.clinic, event(lead["id"], "booked", clock.now(), clock.now()))
    assert theirs.status_code == 404  # another clinic's lead is not found
    forged = post_appointment(
        client, tenant.clinic, {"external_id": "apt-3"}, key={"key_id": "fsk_x", "secret": "x"}
    )
    assert forged.status_code == 401
    # The clinic's single webhook secret of before signs web forms only: a booking system needs its own.
    body = b'{"external_id": "apt-3"}'
    legacy = client.post("/api/capture/appointment", data=body, headers=signed_headers(tenant.clinic, body))
    assert legacy.status_code == 403 and "appointment" in legacy.get_json()["message"]


def test_the_coordinator_calendar_shows_scheduled_consultations_without_names(client, tenant):
    me = tenant.users["treatment_coordinator"].id
    lead = create_lead(client, tenant)
    assigned = client.post(f"/api/leads/{lead['id']}/assign", json={"user_id": me}, headers=tenant.headers())
    assert assigned.status_code == 200, assigned.get_json()
    booked = book(client, tenant, lead["id"], clock.now() + timedelta(days=1), location="Room 2")
    url = client.post("/api/me/calendar-token", headers=tenant.headers("treatment_coordinator")).get_json()[
        "url"
    ]
    events = Calendar.from_ical(client.get(url).data).walk("VEVENT")
    [visit] = [e for e in events if str(e["uid"]) == f"consultation-{booked['id']}@followup-engine"]
    assert str(visit["location"]) == "Room 2" and "Jane" not in str(visit["summary"])
    client.post(f"/api/consultations/{booked['id']}/cancel", headers=tenant.headers("front_desk"))
    events = Calendar.from_ical(client.get(url).data).walk("VEVENT")
    assert not [e for e in events if str(e["uid"]).startswith("consultation-")]


def test_a_day_list_and_another_clinics_consultation(client, tenant, make_tenant):
    lead = create_lead(client, tenant)
    booked = book(client, tenant, lead["id"], clock.now() + timedelta(days=1))
    day = datetime.fromisoformat(booked["starts_at"]).astimezone(tenant_zone(client, tenant)).date()
    listed = client.get(f"/api/consultations?date={day.isoformat()}", headers=tenant.headers("front_desk"))
    assert [c["id"] for c in listed.get_json()] == [booked["id"]]
    bad = client.get("/api/consultations?date=tomorrow", headers=tenant.headers("front_desk"))
    assert bad.status_code == 422 and "date" in str(bad.get_json()["errors"])
    other = make_tenant("Other Clinic")
    assert client.get(f"/api/consultations/{booked['id']}", headers=other.headers()).status_code == 404
    assert (
        client.post(f"/api/consultations/{booked['id']}/cancel", headers=other.headers()).status_code == 404
    )
    short = client.post(f"/api/leads/{lead['id']}/consultations", json={"starts_at": booked["starts_at"],
                        "duration_minutes": 1}, headers=tenant.headers("front_desk"))  # fmt: skip
    assert short.status_code == 422 and "duration_minutes" in str(short.get_json()["errors"])


def tenant_zone(client, tenant):
    from zoneinfo import ZoneInfo

    return ZoneInfo(client.get("/api/clinic", headers=tenant.headers()).get_json()["timezone"])
