"""No double booking: a booking (by staff or the practice-management webhook) into a time the
provider holds is a 409 naming the clash with the nearest free slots, or, when the clinic lets its
practice-management system win, stored with a clash for staff; twenty families taking one slot at
once leave one consultation; the database itself refuses an overlap written around the API."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.consultations.models import Consultation
from app.platform import clock
from tests.availability.kit import (
    at,
    consultation_type,
    next_weekday,
    provider,
    set_clinic_zone,
    settings,
    slots,
)
from tests.consultations.kit import book, post_appointment
from tests.leadkit import create_lead

CONCURRENT = 20


def one_doctor(client, tenant, **type_fields):
    set_clinic_zone(client, tenant)
    settings(client, tenant, slot_step_minutes=30, min_notice_minutes=0, horizon_days=365, buffer_minutes=15)
    doctor = provider(client, tenant)
    return doctor, consultation_type(client, tenant, [doctor["id"]], **type_fields)


def test_staff_booking_into_a_taken_time_is_a_409_naming_the_clash_and_nearest_slots(client, tenant):
    doctor, kind = one_doctor(client, tenant)
    tuesday = next_weekday(1)
    first = book(client, tenant, create_lead(client, tenant)["id"], at(tuesday, "10:00"), type_id=kind["id"])
    other_family = create_lead(client, tenant, first_name="Ann", last_name="Other")
    # 10:30 for an hour overlaps 10:00-11:00; 11:00 falls in the 15-minute buffer after it.
    for start in ("10:30", "11:00", "09:30"):
        clash = book(client, tenant, other_family["id"], at(tuesday, start), expect=409, type_id=kind["id"])
        assert clash["code"] == "slot_taken"
        assert clash["errors"]["clash"] == {
            "consultation_id": first["id"],
            "provider_id": doctor["id"],
            "starts_at": at(tuesday, "10:00").isoformat(),
            "ends_at": at(tuesday, "11:00").isoformat(),
        }
        assert "Jane" not in str(clash) and "Doe" not in str(clash)  # nothing of the other family
        nearest = [s["starts_at"] for s in clash["errors"]["alternatives"]]
        assert (
            nearest
            and at(tuesday, "11:30").isoformat() in nearest
            and at(tuesday, "10:00").isoformat() not in nearest
        )
    # Naming the provider by id without a type: the same rule, for its length.
    clash = book(
        client,
        tenant,
        other_family["id"],
        at(tuesday, "10:15"),
        expect=409,
        provider_id=doctor["id"],
        duration_minutes=30,
    )
    assert clash["errors"]["clash"]["consultation_id"] == first["id"]
    fits = book(
        client,
        tenant,
        other_family["id"],
        at(tuesday, "11:15"),
        provider_id=doctor["id"],
        duration_minutes=30,
    )
    assert fits["provider_id"] == doctor["id"] and fits["provider_name"] == "Dr. Lee"
    # A reschedule onto the first one's time is refused too; elsewhere it moves.
    moved = client.put(
        f"/api/consultations/{fits['id']}",
        json={"starts_at": at(tuesday, "10:30").isoformat()},
        headers=tenant.headers("front_desk"),
    )
    assert moved.status_code == 409 and moved.get_json()["errors"]["clash"]["consultation_id"] == first["id"]
    moved = client.put(
        f"/api/consultations/{fits['id']}",
        json={"starts_at": at(tuesday, "15:00").isoformat()},
        headers=tenant.headers("front_desk"),
    )
    assert moved.status_code == 200 and moved.get_json()["ends_at"] == at(tuesday, "15:30").isoformat()


def test_a_type_with_two_providers_books_the_free_one(client, tenant):
    set_clinic_zone(client, tenant)
    settings(client, tenant, min_notice_minutes=0, horizon_days=365)
    lee, kim = provider(client, tenant, "Dr. Lee"), provider(client, tenant, "Dr. Kim")
    kind = consultation_type(client, tenant, [lee["id"], kim["id"]])
    tuesday = next_weekday(1)
    first = book(client, tenant, create_lead(client, tenant)["id"], at(tuesday, "10:00"), type_id=kind["id"])
    second = book(client, tenant, create_lead(client, tenant)["id"], at(tuesday, "10:00"), type_id=kind["id"])
    assert {first["provider_id"], second["provider_id"]} == {lee["id"], kim["id"]}
    third = book(
        client,
        tenant,
        create_lead(client, tenant)["id"],
        at(tuesday, "10:00"),
        expect=409,
        type_id=kind["id"],
    )
    assert third["errors"]["alternatives"]


def appointment(lead_id: int, external_id: str, starts_at, **extra) -> dict:
    return {
        "external_id": external_id,
        "status": "booked",
        "occurred_at": clock.now().isoformat(),
        "starts_at": starts_at.isoformat(),
        "lead_id": lead_id,
        "duration_minutes": 60,
        **extra,
    }


def test_a_webhook_booking_into_a_taken_time_is_a_409_or_a_clash_when_the_system_wins(client, tenant):
    doctor, kind = one_doctor(client, tenant)
    tuesday = next_weekday(1)
    ours = book(client, tenant, create_lead(client, tenant)["id"], at(tuesday, "10:00"), type_id=kind["id"])
    theirs = create_lead(client, tenant, first_name="Ann", last_name="Other")
    # The practice-management system names the provider as staff know them.
    refused = post_appointment(
        client,
        tenant.clinic,
        appointment(theirs["id"], "pm-1", at(tuesday, "10:30"), provider_name="dr. lee"),
    )
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["errors"]["clash"]["consultation_id"] == ours["id"]
    assert client.get("/api/availability/clashes", headers=tenant.headers()).get_json() == []

    settings(client, tenant, webhook_wins=True)
    stored = post_appointment(
        client,
        tenant.clinic,
        appointment(theirs["id"], "pm-1", at(tuesday, "10:30"), provider_name="Dr. Lee"),
    )
    assert stored.status_code == 201, stored.get_json()
    kept = client.get(
        f"/api/consultations/{stored.get_json()['consultation_id']}", headers=tenant.headers()
    ).get_json()
    assert kept["provider_id"] == doctor["id"] and kept["overlap_allowed"] is True
    [clash] = client.get("/api/availability/clashes", headers=tenant.headers("front_desk")).get_json()
    assert clash["consultation_id"] == kept["id"] and clash["clashes_with_id"] == ours["id"]
    assert clash["provider_id"] == doctor["id"] and clash["starts_at"] == at(tuesday, "10:30").isoformat()
    resolved = client.post(f"/api/availability/clashes/{clash['id']}/resolve", headers=tenant.headers())
    assert resolved.status_code == 200 and resolved.get_json()["resolved_at"]
    assert client.get("/api/availability/clashes", headers=tenant.headers()).get_json() == []
    # Staff still cannot book over either of them.
    book(client, tenant, theirs["id"], at(tuesday, "11:00"), expect=409, type_id=kind["id"])


def test_twenty_families_taking_one_slot_at_once_leave_one_consultation(app, client, db, tenant):
    doctor, kind = one_doctor(client, tenant)
    tuesday = next_weekday(1)
    leads = [create_lead(client, tenant, first_name=f"Family{i}")["id"] for i in range(CONCURRENT)]
    headers = tenant.headers("front_desk")
    body = {"starts_at": at(tuesday, "10:00").isoformat(), "type_id": kind["id"]}
    start, answers = threading.Barrier(CONCURRENT), []

    def take(lead_id: int) -> None:
        own = app.test_client()
        start.wait()
        resp = own.post(f"/api/leads/{lead_id}/consultations", json=body, headers=headers)
        answers.append((resp.status_code, resp.get_json()))

    threads = [threading.Thread(target=take, args=(lead_id,)) for lead_id in leads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * (CONCURRENT - 1), answers
    [winner] = [answer for status, answer in answers if status == 201]
    for status, answer in answers:
        if status == 409:
            assert answer["code"] == "slot_taken"
            assert answer["errors"]["clash"]["consultation_id"] == winner["id"]
            assert answer["errors"]["alternatives"], answer
    with db.unit_of_work() as session:
        held = session.scalar(
            sa.select(sa.func.count())
            .select_from(Consultation)
            .where(Consultation.provider_id == doctor["id"])
        )
    assert held == 1


def test_the_database_refuses_an_overlap_written_around_the_api(client, db, tenant):
    _, kind = one_doctor(client, tenant)
    tuesday = next_weekday(1)
    first = book(client, tenant, create_lead(client, tenant)["id"], at(tuesday, "10:00"), type_id=kind["id"])
    with db.unit_of_work() as session:
        row = session.get(Consultation, first["id"])
        twin = {c.name: getattr(row, c.key) for c in Consultation.__table__.columns if c.name != "id"}
    twin["starts_at"] = at(tuesday, "10:45")
    twin["external_id"] = None
    with pytest.raises(sa.exc.IntegrityError, match="consultations_no_overlap"), db.unit_of_work() as session:
        session.execute(sa.insert(Consultation).values(**twin))
        session.commit()
    # Cancelled, the same row is no longer held: the overlap is allowed.
    twin["status"] = "cancelled"
    with db.unit_of_work() as session:
        session.execute(sa.insert(Consultation).values(**twin))
        session.commit()
    twin["starts_at"] = at(tuesday, "11:15") + timedelta(minutes=15)  # after the end and the buffer
    twin["status"] = "scheduled"
    twin["blocked_until"] = twin["starts_at"] + timedelta(hours=1)
    with db.unit_of_work() as session:
        session.execute(sa.insert(Consultation).values(**twin))
        session.commit()


def test_a_webhook_move_to_another_provider_frees_the_first_ones_time(client, tenant):
    set_clinic_zone(client, tenant)
    settings(client, tenant, slot_step_minutes=60, min_notice_minutes=0, horizon_days=365)
    lee, kim = provider(client, tenant, "Dr. Lee"), provider(client, tenant, "Dr. Kim")
    kind = consultation_type(client, tenant, [lee["id"], kim["id"]])
    tuesday = next_weekday(1)
    lead = create_lead(client, tenant)
    first = appointment(lead["id"], "pm-7", at(tuesday, "10:00"), provider_name="Dr. Lee")
    created = post_appointment(client, tenant.clinic, first)
    assert created.status_code == 201, created.get_json()
    consultation_id = created.get_json()["consultation_id"]
    free = slots_at(client, tenant, kind["id"], tuesday, "10:00")
    assert free == [kim["id"]]
    moved = appointment(lead["id"], "pm-7", at(tuesday, "10:00"), provider_id=kim["id"])
    moved["occurred_at"] = (clock.now() + timedelta(seconds=5)).isoformat()
    resp = post_appointment(client, tenant.clinic, moved)
    assert resp.status_code == 200 and resp.get_json()["applied"] is True, resp.get_json()
    shown = client.get(f"/api/consultations/{consultation_id}", headers=tenant.headers()).get_json()
    assert shown["provider_id"] == kim["id"]
    assert slots_at(client, tenant, kind["id"], tuesday, "10:00") == [lee["id"]]


def slots_at(client, tenant, type_id: int, day, hhmm: str) -> list[int]:
    """The providers free at the local time `hhmm` of `day` ([] when no slot then)."""
    found = slots(client, tenant, type_id, day, day)
    return next((s["provider_ids"] for s in found if s["starts_at"] == at(day, hhmm).isoformat()), [])
