"""Leads over the API: create, read, update, validation, soft delete, tenant isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.leads import service as leads
from app.platform import clock
from app.platform.audit.models import AuditEvent
from app.platform.roles import Actor, Role
from tests.leadkit import create_lead, get_lead, set_user, source_ids


def test_a_new_lead_starts_new_in_the_default_stage_with_an_owner_and_e164_phone(client, tenant):
    sources = source_ids(client, tenant)
    lead = create_lead(
        client,
        tenant,
        phone="(415) 555-2671",
        phone_alt="415.555.0199",
        email="Jane.Doe@Example.COM",
        source_id=sources["WALK_IN"],
        treatment_interest=["INVISALIGN", "BRACES_CLEAR", "INVISALIGN"],
        patient_first_name="Emma",
        patient_last_name="Doe",
        patient_relationship="CHILD",
        patient_dob="2013-04-02",
        notes="Asked about evening appointments",
    )
    assert lead["status"] == "NEW"
    assert lead["pipeline_stage"] == "new_lead"
    assert lead["phone"] == "+14155552671"
    assert lead["phone_alt"] == "+14155550199"
    assert lead["email"] == "jane.doe@example.com"
    assert lead["source_id"] == sources["WALK_IN"]
    # The front desk entered the patient's details but does not read them back (PHI policy).
    assert "treatment_interest" not in lead and "patient_dob" not in lead
    read = get_lead(client, tenant, lead["id"], role="treatment_coordinator").get_json()
    assert read["treatment_interest"] == ["INVISALIGN", "BRACES_CLEAR"]
    assert read["patient_dob"] == "2013-04-02"
    assert lead["assigned_to_id"] == tenant.users["treatment_coordinator"].id
    assert lead["assigned_at"] is not None and lead["stage_entered_at"] is not None
    assert lead["possible_duplicates"] == []
    assert lead["preferred_contact"] == "PHONE"


def test_without_a_source_the_lead_is_attributed_to_other_and_a_self_patient_is_the_contact(client, tenant):
    lead = create_lead(client, tenant, role="treatment_coordinator")
    assert lead["source_id"] == source_ids(client, tenant)["OTHER"]
    assert lead["patient_relationship"] == "SELF"
    assert (lead["patient_first_name"], lead["patient_last_name"]) == ("Jane", "Doe")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"phone": "not a phone"}, "phone"),
        ({"phone_alt": "555"}, "phone_alt"),
        ({"email": "jane@"}, "email"),
        ({"preferred_contact": "PIGEON"}, "preferred_contact"),
        ({"patient_relationship": "COUSIN"}, "patient_relationship"),
        ({"treatment_interest": ["GOLD_TEETH"]}, "treatment_interest"),
        ({"patient_dob": "not-a-date"}, "patient_dob"),
        ({"patient_dob": "1850-01-01"}, "patient_dob"),
        ({"source_id": "seven"}, "source_id"),
        ({"first_name": ""}, "first_name"),
        ({"first_name": "   "}, "first_name"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
        ({"status": "CONVERTED"}, "status"),
        ({"assigned_to_id": 1}, "assigned_to_id"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(client, tenant, db, fields, field):
    resp = client.post(
        "/api/leads",
        json={"first_name": "Jane", "last_name": "Doe", **fields},
        headers=tenant.headers("front_desk"),
    )
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]["json"]
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM leads")).scalar_one() == 0


def test_a_date_of_birth_in_the_future_is_refused(client, tenant):
    tomorrow = (clock.now() + timedelta(days=2)).date().isoformat()
    resp = client.post(
        "/api/leads",
        json={"first_name": "A", "last_name": "B", "patient_dob": tomorrow},
        headers=tenant.headers(),
    )
    assert resp.status_code == 422
    assert "patient_dob" in resp.get_json()["errors"]["json"]


def test_phones_are_read_in_the_clinics_region(client, make_tenant):
    uk = make_tenant("London Smiles", default_phone_region="GB")
    lead = create_lead(client, uk, phone="020 7946 0958")
    assert lead["phone"] == "+442079460958"
    # The same national number means nothing in the US.
    us = make_tenant("Boston Smiles")
    resp = client.post(
        "/api/leads",
        json={"first_name": "A", "last_name": "B", "phone": "020 7946 0958"},
        headers=us.headers(),
    )
    assert resp.status_code == 422 and "phone" in resp.get_json()["errors"]["json"]


def test_source_of_another_clinic_or_inactive_is_a_422_on_source_id(client, tenant, make_tenant):
    other = make_tenant("Other")
    foreign = source_ids(client, other)["WALK_IN"]
    resp = client.post(
        "/api/leads",
        json={"first_name": "A", "last_name": "B", "source_id": foreign},
        headers=tenant.headers(),
    )
    assert resp.status_code == 422 and "source_id" in resp.get_json()["errors"]["json"]
    mine = source_ids(client, tenant)["PRINT_AD"]
    client.put(f"/api/lead-sources/{mine}", json={"is_active": False}, headers=tenant.headers())
    resp = client.post(
        "/api/leads", json={"first_name": "A", "last_name": "B", "source_id": mine}, headers=tenant.headers()
    )
    assert resp.status_code == 422 and "inactive" in resp.get_json()["errors"]["json"]["source_id"][0]


def test_get_returns_the_lead_with_an_etag_and_audits_the_read(client, tenant, db):
    lead = create_lead(client, tenant)
    resp = get_lead(client, tenant, lead["id"], role="front_desk")
    assert resp.status_code == 200
    assert resp.get_json()["id"] == lead["id"]
    assert resp.headers["ETag"]
    with db.unit_of_work() as session:
        reads = session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action == "lead.read", AuditEvent.subject_id == str(lead["id"])
            )
        ).all()
        assert [r.actor for r in reads] == [f"user:{tenant.users['front_desk'].id}"]


def test_put_changes_details_renormalises_and_answers_a_new_etag(client, tenant):
    lead = create_lead(client, tenant)
    etag = get_lead(client, tenant, lead["id"]).headers["ETag"]
    resp = client.put(
        f"/api/leads/{lead['id']}",
        json={
            "phone": "+1 (212) 555-0100",
            "city": "Springfield",
            "email": None,
            "patient_dob": "2010-01-31",
        },
        headers={**tenant.headers("treatment_coordinator"), "If-Match": etag},
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["phone"] == "+12125550100"
    assert body["city"] == "Springfield"
    assert body["email"] is None
    assert body["patient_dob"] == "2010-01-31"
    assert resp.headers["ETag"] != etag
    assert get_lead(client, tenant, lead["id"]).get_json()["city"] == "Springfield"


def test_put_with_a_stale_if_match_is_a_412_and_changes_nothing(client, tenant):
    lead = create_lead(client, tenant)
    stale = get_lead(client, tenant, lead["id"]).headers["ETag"]
    first = client.put(
        f"/api/leads/{lead['id']}", json={"city": "Austin"}, headers={**tenant.headers(), "If-Match": stale}
    )
    assert first.status_code == 200
    second = client.put(
        f"/api/leads/{lead['id']}", json={"city": "Dallas"}, headers={**tenant.headers(), "If-Match": stale}
    )
    assert second.status_code == 412
    assert get_lead(client, tenant, lead["id"]).get_json()["city"] == "Austin"


def test_put_refuses_bad_input_naming_the_field(client, tenant):
    lead = create_lead(client, tenant)
    for body, field in (
        ({"phone": "123"}, "phone"),
        ({"pipeline_stage": "contacted"}, "pipeline_stage"),
        ({"first_name": None}, "first_name"),
        ({"source_id": None}, "source_id"),
        ({"preferred_contact": None}, "preferred_contact"),
    ):
        resp = client.put(f"/api/leads/{lead['id']}", json=body, headers=tenant.headers())
        assert resp.status_code == 422, (body, resp.get_json())
        assert field in resp.get_json()["errors"]["json"], body


def test_front_desk_and_doctor_cannot_update(client, tenant):
    lead = create_lead(client, tenant)
    for role in ("front_desk", "doctor"):
        resp = client.put(f"/api/leads/{lead['id']}", json={"city": "X"}, headers=tenant.headers(role))
        assert resp.status_code == 403


def test_another_clinics_lead_is_a_404_everywhere_and_never_listed(client, tenant, make_tenant):
    other = make_tenant("Rival Ortho")
    theirs = create_lead(client, other, first_name="Secret", last_name="Person")
    lead_id = theirs["id"]
    h = tenant.headers()
    assert client.get(f"/api/leads/{lead_id}", headers=h).status_code == 404
    assert client.put(f"/api/leads/{lead_id}", json={"city": "X"}, headers=h).status_code == 404
    assert (
        client.post(f"/api/leads/{lead_id}/stage", json={"stage": "contacted"}, headers=h).status_code == 404
    )
    assert client.post(f"/api/leads/{lead_id}/lost", json={"reason": "OTHER"}, headers=h).status_code == 404
    assert client.post(f"/api/leads/{lead_id}/convert", headers=h).status_code == 404
    user_id = tenant.users["treatment_coordinator"].id
    assert (
        client.post(f"/api/leads/{lead_id}/assign", json={"user_id": user_id}, headers=h).status_code == 404
    )
    assert client.get(f"/api/leads/{lead_id}/activities", headers=h).status_code == 404
    resp = client.post(f"/api/leads/{lead_id}/activities", json={"type": "NOTE", "notes": "x"}, headers=h)
    assert resp.status_code == 404
    listed = client.get("/api/leads?q=Secret", headers=h).get_json()
    assert listed == []
    body = client.get(f"/api/leads/{lead_id}", headers=h).get_data(as_text=True)
    assert "Secret" not in body


def test_a_soft_deleted_lead_is_gone_from_the_api_but_kept_in_the_table(app, client, tenant, db):
    lead = create_lead(client, tenant)
    actor = Actor(
        clinic_id=tenant.id,
        user_id=tenant.users["clinic_admin"].id,
        role=Role.CLINIC_ADMIN.value,
        permissions=frozenset(),
    )
    with app.app_context(), db.unit_of_work() as session:
        leads.delete_lead(session=session, actor=actor, lead_id=lead["id"], now=clock.now())
    assert get_lead(client, tenant, lead["id"]).status_code == 404
    resp = client.put(f"/api/leads/{lead['id']}", json={"city": "X"}, headers=tenant.headers())
    assert resp.status_code == 404
    assert client.get("/api/leads", headers=tenant.headers()).get_json() == []
    with db.engine.connect() as conn:
        deleted_at = conn.execute(
            sa.text("SELECT deleted_at FROM leads WHERE id = :i"), {"i": lead["id"]}
        ).scalar()
    assert deleted_at is not None


def test_an_api_key_with_lead_create_can_push_leads(client, tenant):
    key = client.post(
        "/api/api-keys", json={"name": "website", "permissions": ["lead:create"]}, headers=tenant.headers()
    ).get_json()["key"]
    resp = client.post(
        "/api/leads", json={"first_name": "Api", "last_name": "Lead"}, headers={"X-API-Key": key}
    )
    assert resp.status_code == 201
    assert resp.get_json()["assigned_to_id"] == tenant.users["treatment_coordinator"].id


def test_a_lead_gets_no_owner_when_nobody_can_take_it_and_the_timeline_says_why(app, client, tenant):
    set_user(app, tenant.users["treatment_coordinator"].id, out_of_office=True)
    set_user(app, tenant.users["clinic_admin"].id, active=False)
    lead = create_lead(client, tenant)
    assert lead["assigned_to_id"] is None
    set_user(app, tenant.users["clinic_admin"].id, active=True)  # to read the timeline
    timeline = client.get(f"/api/leads/{lead['id']}/activities", headers=tenant.headers()).get_json()
    assert timeline[0]["type"] == "ASSIGNMENT_CHANGE"
    assert timeline[0]["details"]["to_user_id"] is None
    assert "no available" in timeline[0]["details"]["reason"]
