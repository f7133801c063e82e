"""Duplicate detection on create: phone, email, near-identical name with the same DOB."""

from __future__ import annotations

from tests.leadkit import count, create_lead, events


def test_the_same_phone_in_two_formats_is_a_possible_duplicate(client, tenant):
    first = create_lead(client, tenant, phone="(415) 555-2671")
    second = create_lead(client, tenant, first_name="John", last_name="Roe", phone="+1 415-555-2671")
    assert second["possible_duplicates"] == [{"lead_id": first["id"], "matched": ["phone"]}]
    assert second["id"] != first["id"]


def test_a_phone_matching_the_other_leads_alternate_phone_counts(client, tenant):
    first = create_lead(client, tenant, phone="212-555-0100", phone_alt="415 555 2671")
    second = create_lead(client, tenant, first_name="X", last_name="Y", phone="4155552671")
    assert second["possible_duplicates"] == [{"lead_id": first["id"], "matched": ["phone"]}]


def test_email_matches_case_insensitively_and_several_reasons_are_listed(client, tenant):
    first = create_lead(client, tenant, email="Jane@Example.com", phone="415-555-2671")
    second = create_lead(client, tenant, email="jane@example.COM", phone="(415) 555-2671")
    assert second["possible_duplicates"] == [{"lead_id": first["id"], "matched": ["phone", "email"]}]


def test_a_near_identical_name_with_the_same_birth_date_matches(client, tenant):
    first = create_lead(
        client,
        tenant,
        first_name="Maria",
        last_name="Gonzalez",
        patient_first_name="Sofía",
        patient_last_name="González",
        patient_relationship="CHILD",
        patient_dob="2012-06-15",
    )
    # Another parent calls about the same child, spelled without accents.
    second = create_lead(
        client,
        tenant,
        first_name="Carlos",
        last_name="Gonzales",
        patient_first_name="Sofia",
        patient_last_name="Gonzalez",
        patient_relationship="CHILD",
        patient_dob="2012-06-15",
    )
    assert second["possible_duplicates"] == [{"lead_id": first["id"], "matched": ["name_dob"]}]


def test_same_name_with_another_birth_date_or_another_name_with_the_same_date_is_not_a_match(client, tenant):
    create_lead(client, tenant, first_name="Sam", last_name="Lee", patient_dob="2011-01-01")
    other_date = create_lead(client, tenant, first_name="Sam", last_name="Lee", patient_dob="2011-01-02")
    assert other_date["possible_duplicates"] == []
    other_name = create_lead(
        client, tenant, first_name="Priya", last_name="Natarajan", patient_dob="2011-01-01"
    )
    assert other_name["possible_duplicates"] == []


def test_closed_and_other_clinics_leads_are_not_duplicates(client, tenant, make_tenant):
    h = tenant.headers("treatment_coordinator")
    lost = create_lead(client, tenant, phone="415-555-2671")
    client.post(f"/api/leads/{lost['id']}/lost", json={"reason": "NO_RESPONSE"}, headers=h)
    converted = create_lead(client, tenant, email="conv@example.com")
    client.post(f"/api/leads/{converted['id']}/convert", headers=h)
    other = make_tenant("Elsewhere")
    create_lead(client, other, phone="415-555-2671", email="conv@example.com")
    fresh = create_lead(client, tenant, phone="415-555-2671", email="conv@example.com")
    assert fresh["possible_duplicates"] == []


def test_reject_duplicates_is_a_409_listing_them_and_stores_nothing(client, tenant, db):
    first = create_lead(client, tenant, phone="(415) 555-2671")
    leads_before, events_before = count(db, "leads"), len(events(db))
    activities_before = count(db, "lead_activities")
    resp = client.post(
        "/api/leads?reject_duplicates=true",
        json={"first_name": "J", "last_name": "D", "phone": "+14155552671"},
        headers=tenant.headers("front_desk"),
    )
    assert resp.status_code == 409
    assert resp.get_json()["errors"]["possible_duplicates"] == [
        {"lead_id": first["id"], "matched": ["phone"]}
    ]
    assert count(db, "leads") == leads_before
    assert count(db, "lead_activities") == activities_before
    assert len(events(db)) == events_before


def test_reject_duplicates_without_a_match_creates_the_lead(client, tenant):
    lead = create_lead(client, tenant, query="?reject_duplicates=true", phone="415-555-2671")
    assert lead["possible_duplicates"] == []
