"""Numbers beyond the database's integer range are a 404 or a 422 naming the field, never a 500."""

from __future__ import annotations

import pytest

from tests.leadkit import create_lead

HUGE = 99_999_999_999  # beyond PostgreSQL's 32-bit `integer`
ENORMOUS = 10**30  # beyond any 64-bit integer (SQLite too)


@pytest.mark.parametrize("number", [HUGE, ENORMOUS])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/leads/{n}"),
        ("PUT", "/api/leads/{n}"),
        ("POST", "/api/leads/{n}/stage"),
        ("POST", "/api/leads/{n}/convert"),
        ("GET", "/api/leads/{n}/activities"),
        ("GET", "/api/lead-sources/{n}"),
        ("GET", "/api/pipeline-stages/{n}"),
        ("GET", "/api/users/{n}"),
    ],
)
def test_an_oversized_id_in_the_path_is_a_404(client, tenant, method, path, number):
    resp = client.open(path.format(n=number), method=method, json={}, headers=tenant.headers())
    assert resp.status_code == 404


@pytest.mark.parametrize("number", [HUGE, ENORMOUS])
def test_oversized_ids_in_bodies_and_queries_are_a_422_naming_the_field(client, tenant, number):
    h = tenant.headers()
    lead = create_lead(client, tenant)
    cases = [
        (client.get(f"/api/leads?source={number}", headers=h), "query", "source"),
        (client.get(f"/api/leads?assigned_to={number}", headers=h), "query", "assigned_to"),
        (
            client.post(
                "/api/leads", json={"first_name": "A", "last_name": "B", "source_id": number}, headers=h
            ),
            "json",
            "source_id",
        ),
        (
            client.post(
                "/api/leads",
                json={"first_name": "A", "last_name": "B", "referring_patient_id": number},
                headers=h,
            ),
            "json",
            "referring_patient_id",
        ),
        (
            client.post(f"/api/leads/{lead['id']}/assign", json={"user_id": number}, headers=h),
            "json",
            "user_id",
        ),
        (
            client.post(
                "/api/lead-sources",
                json={"name": "N", "category": "OTHER", "coordinator_ids": [number]},
                headers=h,
            ),
            "json",
            "coordinator_ids",
        ),
        (
            client.post("/api/pipeline-stages", json={"name": "N", "task_template_id": number}, headers=h),
            "json",
            "task_template_id",
        ),
        (
            client.put("/api/pipeline-stages/reorder", json={"stage_ids": [number]}, headers=h),
            "json",
            "stage_ids",
        ),
    ]
    for resp, location, field in cases:
        assert resp.status_code == 422, (field, resp.status_code, resp.get_json())
        assert field in resp.get_json()["errors"][location], field


def test_a_page_far_beyond_the_end_is_empty_not_an_error(client, tenant):
    lead = create_lead(client, tenant)
    for page in (10**6, 10**15, 10**30):
        resp = client.get(f"/api/leads?page={page}", headers=tenant.headers())
        assert (resp.status_code, resp.get_json()) == (200, []), page
        resp = client.get(f"/api/leads/{lead['id']}/activities?page={page}", headers=tenant.headers())
        assert (resp.status_code, resp.get_json()) == (200, []), page
        resp = client.get(f"/api/audit-events?page={page}", headers=tenant.headers())
        assert (resp.status_code, resp.get_json()) == (200, []), page
