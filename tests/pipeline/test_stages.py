"""Pipeline stages: the seeded default pipeline, create, update, one default, reorder, isolation."""

from __future__ import annotations

import pytest

from tests.leadkit import create_lead, stages

DEFAULT_SLUGS = [
    "new_lead",
    "contacted",
    "consultation_scheduled",
    "consultation_completed",
    "pending_decision",
    "treatment_accepted",
    "treatment_started",
    "lost",
]


def _by_slug(client, tenant) -> dict[str, dict]:
    return {s["slug"]: s for s in stages(client, tenant)}


def test_a_new_clinic_has_the_eight_default_stages_in_order(client, tenant):
    listed = client.get("/api/pipeline-stages", headers=tenant.headers("front_desk")).get_json()
    assert [s["slug"] for s in listed] == DEFAULT_SLUGS
    assert [s["order"] for s in listed] == list(range(1, 9))
    flags = {s["slug"]: (s["is_terminal"], s["is_default"], s["max_days_in_stage"]) for s in listed}
    assert flags["new_lead"] == (False, True, None)
    assert flags["pending_decision"] == (False, False, 7)
    assert flags["treatment_started"][0] and flags["lost"][0]
    assert sum(s["is_default"] for s in listed) == 1
    assert sum(s["is_terminal"] for s in listed) == 2


def test_create_a_stage_inserted_before_the_terminal_ones(client, tenant):
    resp = client.post(
        "/api/pipeline-stages",
        json={"name": "Financing Review", "color": "#aa00FF", "max_days_in_stage": 5, "task_template_id": 42},
        headers=tenant.headers(),
    )
    assert resp.status_code == 201, resp.get_json()
    made = resp.get_json()
    assert made["slug"] == "financing_review"
    assert made["task_template_id"] == 42
    slugs = [s["slug"] for s in stages(client, tenant)]
    assert slugs == [*DEFAULT_SLUGS[:6], "financing_review", "treatment_started", "lost"]
    assert [s["order"] for s in stages(client, tenant)] == list(range(1, 10))


def test_create_at_an_explicit_position_and_slug(client, tenant):
    resp = client.post(
        "/api/pipeline-stages",
        json={"name": "Second look", "slug": "second_look", "order": 2},
        headers=tenant.headers(),
    )
    assert resp.status_code == 201
    assert [s["slug"] for s in stages(client, tenant)][:3] == ["new_lead", "second_look", "contacted"]


def test_a_taken_slug_is_a_409_naming_slug(client, tenant):
    resp = client.post("/api/pipeline-stages", json={"name": "Contacted"}, headers=tenant.headers())
    assert resp.status_code == 409
    assert "slug" in resp.get_json()["errors"]["json"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "X", "color": "red"}, "color"),
        ({"name": "X", "color": "#12345"}, "color"),
        ({"name": "X", "slug": "Has Spaces"}, "slug"),
        ({"name": "X", "max_days_in_stage": 0}, "max_days_in_stage"),
        ({"name": "X", "task_template_id": "seven"}, "task_template_id"),
        ({"name": "X", "order": 0}, "order"),
        ({"name": "!!!"}, "slug"),
        ({"name": "X", "is_terminal": True, "is_default": True}, "is_default"),
    ],
)
def test_bad_stage_input_is_a_422_naming_the_field(client, tenant, body, field):
    resp = client.post("/api/pipeline-stages", json=body, headers=tenant.headers())
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]["json"]


def test_rename_and_recolour_keep_the_slug(client, tenant):
    contacted = _by_slug(client, tenant)["contacted"]
    etag = client.get(f"/api/pipeline-stages/{contacted['id']}", headers=tenant.headers()).headers["ETag"]
    resp = client.put(
        f"/api/pipeline-stages/{contacted['id']}",
        json={"name": "Reached", "color": "#000000", "max_days_in_stage": 3},
        headers={**tenant.headers(), "If-Match": etag},
    )
    assert resp.status_code == 200
    assert (resp.get_json()["name"], resp.get_json()["slug"], resp.get_json()["color"]) == (
        "Reached",
        "contacted",
        "#000000",
    )
    stale = client.put(
        f"/api/pipeline-stages/{contacted['id']}",
        json={"name": "X"},
        headers={**tenant.headers(), "If-Match": etag},
    )
    assert stale.status_code == 412
    assert (
        client.put(
            f"/api/pipeline-stages/{contacted['id']}", json={"slug": "reached"}, headers=tenant.headers()
        ).status_code
        == 422
    )


def test_only_one_stage_is_the_default_and_new_leads_start_there(client, tenant):
    by_slug = _by_slug(client, tenant)
    resp = client.put(
        f"/api/pipeline-stages/{by_slug['contacted']['id']}",
        json={"is_default": True},
        headers=tenant.headers(),
    )
    assert resp.status_code == 200
    defaults = [s["slug"] for s in stages(client, tenant) if s["is_default"]]
    assert defaults == ["contacted"]
    assert create_lead(client, tenant)["pipeline_stage"] == "contacted"


def test_the_default_cannot_be_unset_or_made_terminal(client, tenant):
    new_lead = _by_slug(client, tenant)["new_lead"]
    resp = client.put(
        f"/api/pipeline-stages/{new_lead['id']}", json={"is_default": False}, headers=tenant.headers()
    )
    assert resp.status_code == 422 and "is_default" in resp.get_json()["errors"]["json"]
    resp = client.put(
        f"/api/pipeline-stages/{new_lead['id']}", json={"is_terminal": True}, headers=tenant.headers()
    )
    assert resp.status_code == 422 and "is_default" in resp.get_json()["errors"]["json"]


def test_lost_and_treatment_started_stay_terminal(client, tenant):
    for slug in ("lost", "treatment_started"):
        stage = _by_slug(client, tenant)[slug]
        resp = client.put(
            f"/api/pipeline-stages/{stage['id']}", json={"is_terminal": False}, headers=tenant.headers()
        )
        assert resp.status_code == 422 and "is_terminal" in resp.get_json()["errors"]["json"]


def test_reorder_takes_exactly_the_clinics_stages(client, tenant, make_tenant):
    ids = [s["id"] for s in stages(client, tenant)]
    new_order = [ids[0], ids[2], ids[1], *ids[3:]]
    resp = client.put("/api/pipeline-stages/reorder", json={"stage_ids": new_order}, headers=tenant.headers())
    assert resp.status_code == 200
    assert [s["id"] for s in resp.get_json()] == new_order
    assert [s["id"] for s in stages(client, tenant)] == new_order
    foreign = stages(client, make_tenant("Other"))[0]["id"]
    for bad in (
        new_order[:-1],
        [*new_order, new_order[0]],
        [*new_order[:-1], foreign],
        [*new_order, 999999],
        [],
    ):
        resp = client.put("/api/pipeline-stages/reorder", json={"stage_ids": bad}, headers=tenant.headers())
        assert resp.status_code == 422, bad
        assert "stage_ids" in resp.get_json()["errors"]["json"]
    assert [s["id"] for s in stages(client, tenant)] == new_order


def test_another_clinics_stage_is_a_404(client, tenant, make_tenant):
    theirs = stages(client, make_tenant("Other"))[0]["id"]
    assert client.get(f"/api/pipeline-stages/{theirs}", headers=tenant.headers()).status_code == 404
    resp = client.put(f"/api/pipeline-stages/{theirs}", json={"name": "Mine"}, headers=tenant.headers())
    assert resp.status_code == 404


def test_reading_stages_needs_lead_read_and_writing_needs_configure(client, tenant):
    assert client.get("/api/pipeline-stages", headers=tenant.headers("front_desk")).status_code == 200
    resp = client.post(
        "/api/pipeline-stages", json={"name": "X"}, headers=tenant.headers("treatment_coordinator")
    )
    assert resp.status_code == 403
