"""Roles as the spec's access table (lead-management.md "Access Control"; issue 14 item 11).

View leads: front_desk, treatment_coordinator, clinic_admin. Create: front_desk,
treatment_coordinator (and clinic_admin: "everything", docs/guides/api.md "Roles"). Assign and convert:
treatment_coordinator, clinic_admin. Analytics: clinic_admin, doctor.
"""

from __future__ import annotations

import pytest

from tests.leadkit import create_lead

ROLES = ("front_desk", "treatment_coordinator", "clinic_admin", "doctor")
VIEW = {"front_desk", "treatment_coordinator", "clinic_admin"}
CREATE = {"front_desk", "treatment_coordinator", "clinic_admin"}
ASSIGN = CONVERT = {"treatment_coordinator", "clinic_admin"}
ANALYTICS = {"clinic_admin", "doctor"}


def allowed(status: int) -> bool:
    assert status < 500
    return status not in (401, 403)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_does_what_the_access_table_says(client, tenant, role):
    headers = tenant.headers(role)
    lead = create_lead(client, tenant, role="front_desk")
    assert allowed(client.get(f"/api/leads/{lead['id']}", headers=headers).status_code) is (role in VIEW)
    assert allowed(client.get("/api/leads", headers=headers).status_code) is (role in VIEW)
    assert allowed(client.get(f"/api/leads/{lead['id']}/activities", headers=headers).status_code) is (
        role in VIEW
    )
    made = client.post("/api/leads", json={"first_name": "Ann", "last_name": "Lee"}, headers=headers)
    assert allowed(made.status_code) is (role in CREATE)
    assigned = client.post(
        f"/api/leads/{lead['id']}/assign",
        json={"user_id": tenant.users["treatment_coordinator"].id},
        headers=headers,
    )
    assert allowed(assigned.status_code) is (role in ASSIGN)
    converted = client.post(f"/api/leads/{lead['id']}/convert", headers=headers)
    assert allowed(converted.status_code) is (role in CONVERT)
    report = client.get("/api/leads/analytics/funnel", headers=headers)
    assert allowed(report.status_code) is (role in ANALYTICS)


def test_a_doctor_reads_reports_but_no_lead_and_no_health_concern(client, tenant):
    lead = create_lead(client, tenant, notes="Allergic to latex")
    doctor = tenant.headers("doctor")
    assert client.get(f"/api/leads/{lead['id']}", headers=doctor).status_code == 403
    assert client.get("/api/leads?q=Jane", headers=doctor).status_code == 403
    assert client.get("/api/leads/analytics/sources", headers=doctor).status_code == 200
    me = client.get("/api/me", headers=doctor).get_json()
    assert me["role"] == "doctor" and "lead:read" not in me["permissions"]
