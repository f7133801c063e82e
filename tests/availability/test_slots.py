"""Free slots through the API: a provider's weekly hours and dated exceptions, the buffer after a
booked visit, minimum notice and the horizon, the clinic's closures, a DST change; another clinic's
providers and types are not found; bad input names its field."""

from __future__ import annotations

from datetime import timedelta

from tests.availability.kit import (
    at,
    consultation_type,
    local_times,
    next_dst_change,
    next_weekday,
    provider,
    set_clinic_zone,
    settings,
    slots,
)
from tests.consultations.kit import book
from tests.leadkit import create_lead

HOURLY = ["09:00", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]


def clinic_with_one_provider(client, tenant, **type_fields):
    set_clinic_zone(client, tenant)
    settings(client, tenant, slot_step_minutes=60, min_notice_minutes=0, horizon_days=365, buffer_minutes=0)
    doctor = provider(client, tenant)
    kind = consultation_type(client, tenant, [doctor["id"]], **type_fields)
    return doctor, kind


def test_slots_follow_weekly_hours_and_dated_exceptions(client, tenant):
    tuesday = next_weekday(1)
    wednesday, saturday = tuesday + timedelta(days=1), tuesday + timedelta(days=4)
    hours = {
        "mon": ["09:00", "17:00"],
        "tue": [["09:00", "12:00"], ["13:00", "17:00"]],  # lunch
        "wed": ["09:00", "17:00"],
        "thu": ["09:00", "17:00"],
        "fri": ["09:00", "17:00"],
        "exceptions": {wednesday.isoformat(): [["14:00", "16:00"]]},
    }
    set_clinic_zone(client, tenant)
    settings(client, tenant, slot_step_minutes=60, min_notice_minutes=0, horizon_days=365)
    doctor = provider(client, tenant, hours=hours)
    kind = consultation_type(client, tenant, [doctor["id"]])
    found = slots(client, tenant, kind["id"], tuesday, saturday)
    assert local_times(found, tuesday) == ["09:00", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00"]
    assert local_times(found, wednesday) == ["14:00", "15:00"]  # that day's other hours
    assert local_times(found, saturday) == []  # no hours on Saturdays
    first = found[0]
    assert first["starts_at"] == at(tuesday, "09:00").isoformat()
    assert first["ends_at"] == at(tuesday, "10:00").isoformat()
    assert first["provider_ids"] == [doctor["id"]]
    # A day off as a dated exception.
    changed = client.put(
        f"/api/availability/providers/{doctor['id']}",
        json={"hours": {**hours, "exceptions": {tuesday.isoformat(): []}}},
        headers=tenant.headers(),
    )
    assert changed.status_code == 200, changed.get_json()
    assert local_times(slots(client, tenant, kind["id"], tuesday, tuesday), tuesday) == []


def test_a_booked_visit_and_its_buffer_take_their_slots(client, tenant):
    doctor, kind = clinic_with_one_provider(client, tenant, buffer_minutes=30)
    tuesday = next_weekday(1)
    lead = create_lead(client, tenant)
    booked = book(client, tenant, lead["id"], at(tuesday, "10:00"), type_id=kind["id"])
    assert booked["provider_id"] == doctor["id"] and booked["duration_minutes"] == 60
    assert booked["ends_at"] == at(tuesday, "11:00").isoformat()
    times = local_times(slots(client, tenant, kind["id"], tuesday, tuesday), tuesday)
    # 09:00 would run into 10:00 with its buffer; 10:00 is taken; 11:00 falls in the 30-minute buffer.
    assert times == ["12:00", "13:00", "14:00", "15:00", "16:00"]
    # Cancelled, the time is free again.
    resp = client.post(f"/api/consultations/{booked['id']}/cancel", headers=tenant.headers("front_desk"))
    assert resp.status_code == 200
    assert local_times(slots(client, tenant, kind["id"], tuesday, tuesday), tuesday) == HOURLY


def test_minimum_notice_and_the_horizon_bound_the_slots(client, tenant):
    _, kind = clinic_with_one_provider(client, tenant)
    tuesday = next_weekday(1, at_least_days=7)
    settings(client, tenant, min_notice_minutes=60 * 24 * 60)  # 60 days' notice: nothing this month
    assert slots(client, tenant, kind["id"], tuesday, tuesday) == []
    settings(client, tenant, min_notice_minutes=0, horizon_days=3)  # nothing a week away either
    assert slots(client, tenant, kind["id"], tuesday, tuesday) == []
    # The type's own horizon overrides the clinic's.
    resp = client.put(
        f"/api/availability/types/{kind['id']}", json={"horizon_days": 30}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    assert local_times(slots(client, tenant, kind["id"], tuesday, tuesday), tuesday) == HOURLY


def test_a_closure_removes_its_days(client, tenant):
    _, kind = clinic_with_one_provider(client, tenant)
    monday = next_weekday(0)
    closed = client.post(
        "/api/availability/closures",
        json={
            "starts_on": (monday + timedelta(days=1)).isoformat(),
            "ends_on": (monday + timedelta(days=2)).isoformat(),
            "reason": "Training",
        },
        headers=tenant.headers(),
    )
    assert closed.status_code == 201, closed.get_json()
    found = slots(client, tenant, kind["id"], monday, monday + timedelta(days=3))
    days = sorted({s["local_starts_at"][:10] for s in found})
    assert days == [monday.isoformat(), (monday + timedelta(days=3)).isoformat()]
    reversed_dates = client.post(
        "/api/availability/closures",
        json={"starts_on": monday.isoformat(), "ends_on": (monday - timedelta(days=1)).isoformat()},
        headers=tenant.headers(),
    )
    assert reversed_dates.status_code == 422 and "ends_on" in str(reversed_dates.get_json()["errors"])


def test_slots_keep_their_local_time_across_a_dst_change(client, tenant):
    change = next_dst_change()
    before, after = change - timedelta(days=3), change + timedelta(days=3)
    hours = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    set_clinic_zone(client, tenant)
    settings(client, tenant, slot_step_minutes=60, min_notice_minutes=0, horizon_days=365)
    doctor = provider(client, tenant, hours=hours)
    kind = consultation_type(client, tenant, [doctor["id"]])
    found = slots(client, tenant, kind["id"], before, before)
    later = slots(client, tenant, kind["id"], after, after)
    assert local_times(found, before) == HOURLY and local_times(later, after) == HOURLY
    # The same local 09:00, an hour apart in UTC.
    assert found[0]["starts_at"] == at(before, "09:00").isoformat()
    assert later[0]["starts_at"] == at(after, "09:00").isoformat()
    offsets = {found[0]["local_starts_at"][-6:], later[0]["local_starts_at"][-6:]}
    assert offsets == {"-05:00", "-04:00"}


def test_another_clinics_providers_and_types_are_not_found(client, tenant, make_tenant):
    doctor, kind = clinic_with_one_provider(client, tenant)
    other = make_tenant("Other Clinic")
    assert (
        client.get(f"/api/availability/providers/{doctor['id']}", headers=other.headers()).status_code == 404
    )
    assert client.get(f"/api/availability/types/{kind['id']}", headers=other.headers()).status_code == 404
    put = client.put(f"/api/availability/types/{kind['id']}", json={"name": "x"}, headers=other.headers())
    assert put.status_code == 404
    theirs = client.get(
        "/api/availability",
        query_string={"type": kind["id"], "from": "2027-01-04", "to": "2027-01-05"},
        headers=other.headers(),
    )
    assert theirs.status_code == 404
    # Their type cannot name our provider; our list shows none of theirs.
    mixed = client.post(
        "/api/availability/types",
        json={"name": "Mixed", "duration_minutes": 30, "provider_ids": [doctor["id"]]},
        headers=other.headers(),
    )
    assert mixed.status_code == 422 and "provider_ids" in str(mixed.get_json()["errors"])
    assert client.get("/api/availability/providers", headers=other.headers()).get_json() == []
    # Booking another clinic's provider is not found either.
    lead = create_lead(client, other)
    resp = client.post(
        f"/api/leads/{lead['id']}/consultations",
        json={"starts_at": at(next_weekday(1), "10:00").isoformat(), "provider_id": doctor["id"]},
        headers=other.headers("front_desk"),
    )
    assert resp.status_code == 404


def test_bad_input_names_the_field_and_configuring_needs_an_admin(client, tenant):
    set_clinic_zone(client, tenant)
    bad_hours = client.post(
        "/api/availability/providers",
        json={"name": "Chair 1", "hours": {"mon": ["17:00", "09:00"]}},
        headers=tenant.headers(),
    )
    assert bad_hours.status_code == 422 and "hours" in str(bad_hours.get_json()["errors"])
    no_feed = provider(
        client, tenant, "Chair 2", kind="chair", feed_url="ftp://example.com/x.ics", expect=422
    )
    assert "feed_url" in str(no_feed["errors"])
    fraction = client.put(
        "/api/availability/settings", json={"buffer_minutes": 2.5}, headers=tenant.headers()
    )
    assert fraction.status_code == 422 and "buffer_minutes" in str(fraction.get_json()["errors"])
    desk = client.post(
        "/api/availability/providers", json={"name": "X", "hours": {}}, headers=tenant.headers("front_desk")
    )
    assert desk.status_code == 403
    doctor = provider(client, tenant)
    provider(client, tenant, "dr. lee", expect=409)
    kind = consultation_type(client, tenant, [doctor["id"]])
    too_long = client.get(
        "/api/availability",
        query_string={"type": kind["id"], "from": "2027-01-01", "to": "2027-06-01"},
        headers=tenant.headers(),
    )
    assert too_long.status_code == 422 and "to" in str(too_long.get_json()["errors"])
