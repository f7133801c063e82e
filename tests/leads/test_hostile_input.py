"""Input a database cannot store (NUL characters, extreme dates, oversized names) is a 422 naming the
field, on every lead-domain endpoint, never a 500."""

from __future__ import annotations

import pytest

from tests.leadkit import count, create_lead, post_web_form


@pytest.fixture
def lead_id(client, tenant):
    return create_lead(client, tenant)["id"]


@pytest.mark.parametrize(
    ("method", "path", "body", "location", "field"),
    [
        ("POST", "/api/leads", {"first_name": "A\x00B", "last_name": "C"}, "json", "first_name"),
        ("PUT", "/api/leads/{id}", {"notes": "x\x00y"}, "json", "notes"),
        (
            "POST",
            "/api/leads",
            {"first_name": "A", "last_name": "B", "treatment_interest": ["\x00"]},
            "json",
            "treatment_interest",
        ),
        ("GET", "/api/leads?q=a%00b", None, "query", "q"),
        ("GET", "/api/leads?stage=a%00b", None, "query", "stage"),
        ("GET", "/api/leads?created_from=0001-01-01", None, "query", "created_from"),
        ("GET", "/api/leads?created_to=9999-12-31", None, "query", "created_to"),
        ("GET", "/api/leads?created_to=9999-12-31T23:59:59-14:00", None, "query", "created_to"),
        (
            "POST",
            "/api/leads/{id}/activities",
            {"type": "NOTE", "occurred_at": "0001-01-01T00:00:00+14:00"},
            "json",
            "occurred_at",
        ),
        (
            "POST",
            "/api/leads/{id}/activities",
            {"type": "NOTE", "occurred_at": "9999-12-31T23:59:59-14:00"},
            "json",
            "occurred_at",
        ),
        ("POST", "/api/leads/{id}/activities", {"type": "NOTE", "notes": "\x00"}, "json", "notes"),
        ("POST", "/api/leads/{id}/stage", {"stage": "x\x00"}, "json", "stage"),
        ("POST", "/api/leads/{id}/lost", {"reason": "OTHER", "notes": "\x00"}, "json", "notes"),
        ("POST", "/api/leads/{id}/assign", {"user_id": 2, "reason": "\x00"}, "json", "reason"),
        ("POST", "/api/lead-sources", {"name": "X\x00", "category": "OTHER"}, "json", "name"),
        (
            "POST",
            "/api/lead-sources",
            {"name": "X", "category": "OTHER", "monthly_cost": "1E+1000"},
            "json",
            "monthly_cost",
        ),
        ("POST", "/api/pipeline-stages", {"name": "Stage\x00"}, "json", "name"),
    ],
)
def test_unstorable_input_is_a_422_naming_the_field(
    client, tenant, lead_id, method, path, body, location, field
):
    resp = client.open(path.format(id=lead_id), method=method, json=body, headers=tenant.headers())
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"][location]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"submission_id": "a", "name": "X" * 150 + " " + "Y" * 40, "phone": "4155552671"}, "name"),
        ({"submission_id": "b", "name": "X", "child_name": "C" * 101, "phone": "4155552671"}, "child_name"),
        ({"submission_id": "c\x00", "name": "X", "phone": "4155552671"}, "submission_id"),
        ({"submission_id": "d", "name": "X", "phone": "4155552671", "utm_source": "\x00"}, "utm_source"),
    ],
)
def test_a_signed_web_form_with_unstorable_text_is_a_422(client, tenant, db, form, field):
    resp = post_web_form(client, tenant.clinic, form)
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]["json"]
    assert count(db, "leads") == 0


def test_a_full_name_of_the_maximum_length_still_fits(client, tenant):
    name = "F" * 49 + " " + "L" * 50
    resp = post_web_form(client, tenant.clinic, {"submission_id": "max", "name": name, "phone": "4155552671"})
    assert resp.status_code == 201
