"""Lead sources: seeded per clinic, CRUD, unique names, costs, coordinator mappings, isolation."""

from __future__ import annotations

import pytest

from app.domains.leads.models import LeadSourceCategory
from tests.leadkit import add_user


def test_a_new_clinic_has_one_active_source_per_category(client, tenant):
    sources = client.get("/api/lead-sources", headers=tenant.headers("front_desk")).get_json()
    assert sorted(s["category"] for s in sources) == sorted(c.value for c in LeadSourceCategory)
    assert all(s["is_active"] and s["coordinator_ids"] == [] for s in sources)


def test_create_read_and_update_a_source(client, tenant):
    h = tenant.headers()
    resp = client.post(
        "/api/lead-sources",
        json={
            "name": "Google Ads",
            "category": "WEB_PAID",
            "monthly_cost": "1250.50",
            "description": "Search",
        },
        headers=h,
    )
    assert resp.status_code == 201, resp.get_json()
    made = resp.get_json()
    assert made["monthly_cost"] == "1250.50"
    got = client.get(f"/api/lead-sources/{made['id']}", headers=tenant.headers("front_desk"))
    assert got.status_code == 200 and got.get_json()["name"] == "Google Ads"
    resp = client.put(
        f"/api/lead-sources/{made['id']}",
        json={"monthly_cost": 900, "is_active": False, "name": "Google Ads (paused)"},
        headers={**h, "If-Match": got.headers["ETag"]},
    )
    assert resp.status_code == 200
    assert resp.get_json()["monthly_cost"] == "900.00"
    assert resp.get_json()["is_active"] is False
    stale = client.put(
        f"/api/lead-sources/{made['id']}",
        json={"monthly_cost": 1},
        headers={**h, "If-Match": got.headers["ETag"]},
    )
    assert stale.status_code == 412
    inactive = client.get("/api/lead-sources?is_active=false", headers=h).get_json()
    assert [s["name"] for s in inactive] == ["Google Ads (paused)"]
    paid = client.get("/api/lead-sources?category=WEB_PAID", headers=h).get_json()
    assert {s["name"] for s in paid} == {"Online ads", "Google Ads (paused)"}


def test_names_are_unique_per_clinic_ignoring_case(client, tenant, make_tenant):
    h = tenant.headers()
    resp = client.post("/api/lead-sources", json={"name": "walk-IN", "category": "WALK_IN"}, headers=h)
    assert resp.status_code == 409
    assert "name" in resp.get_json()["errors"]["json"]
    made = client.post("/api/lead-sources", json={"name": "Radio", "category": "OTHER"}, headers=h).get_json()
    resp = client.put(f"/api/lead-sources/{made['id']}", json={"name": "Other"}, headers=h)
    assert resp.status_code == 409 and "name" in resp.get_json()["errors"]["json"]
    other = make_tenant("Other clinic")
    assert (
        client.post(
            "/api/lead-sources", json={"name": "Radio", "category": "OTHER"}, headers=other.headers()
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "category": "TELEPATHY"}, "category"),
        ({"name": "X"}, "category"),
        ({"category": "OTHER"}, "name"),
        ({"name": "", "category": "OTHER"}, "name"),
        ({"name": "   ", "category": "OTHER"}, "name"),
        ({"name": "X", "category": "OTHER", "monthly_cost": -1}, "monthly_cost"),
        ({"name": "X", "category": "OTHER", "monthly_cost": "NaN"}, "monthly_cost"),
        ({"name": "X", "category": "OTHER", "monthly_cost": "lots"}, "monthly_cost"),
        ({"name": "X", "category": "OTHER", "coordinator_ids": ["a"]}, "coordinator_ids"),
        ({"name": "X", "category": "OTHER", "coordinator_ids": [999999]}, "coordinator_ids"),
        ({"name": "X" * 101, "category": "OTHER"}, "name"),
    ],
)
def test_bad_source_input_is_a_422_naming_the_field(client, tenant, body, field):
    resp = client.post("/api/lead-sources", json=body, headers=tenant.headers())
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]["json"]


def test_coordinator_mapping_accepts_only_active_coordinators_of_the_clinic(app, client, tenant, make_tenant):
    h = tenant.headers()
    coordinator = tenant.users["treatment_coordinator"].id
    admin = tenant.users["clinic_admin"].id
    resp = client.post(
        "/api/lead-sources",
        json={
            "name": "Dr. Smith referrals",
            "category": "DOCTOR_REFERRAL",
            "coordinator_ids": [coordinator, admin],
        },
        headers=h,
    )
    assert resp.status_code == 201 and resp.get_json()["coordinator_ids"] == [coordinator, admin]
    source_id = resp.get_json()["id"]
    inactive = add_user(app, tenant, active=False)
    foreign = make_tenant("Other").users["treatment_coordinator"].id
    for bad in (tenant.users["front_desk"].id, tenant.users["doctor"].id, inactive, foreign):
        resp = client.put(f"/api/lead-sources/{source_id}", json={"coordinator_ids": [bad]}, headers=h)
        assert resp.status_code == 422, bad
        assert "coordinator_ids" in resp.get_json()["errors"]["json"]


def test_another_clinics_source_is_a_404(client, tenant, make_tenant):
    other = make_tenant("Other")
    theirs = client.get("/api/lead-sources", headers=other.headers()).get_json()[0]["id"]
    assert client.get(f"/api/lead-sources/{theirs}", headers=tenant.headers()).status_code == 404
    resp = client.put(f"/api/lead-sources/{theirs}", json={"name": "Mine now"}, headers=tenant.headers())
    assert resp.status_code == 404
    assert client.get(f"/api/lead-sources/{theirs}", headers=other.headers()).get_json()["name"] != "Mine now"


def test_only_configure_may_write_sources(client, tenant):
    for role in ("front_desk", "treatment_coordinator", "doctor"):
        resp = client.post(
            "/api/lead-sources", json={"name": "X", "category": "OTHER"}, headers=tenant.headers(role)
        )
        assert resp.status_code == 403
