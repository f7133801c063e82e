"""Moving leads: forward and skipping, never backwards (except to lost), lost with a reason,
conversion and its lock, stage history and STAGE_CHANGE activities."""

from __future__ import annotations

import pytest

from app.domains.leads.models import Lead
from app.domains.pipeline import service as pipeline
from tests.leadkit import create_lead, get_lead, stages


def _move(client, tenant, lead_id, stage, role="treatment_coordinator", **extra):
    return client.post(
        f"/api/leads/{lead_id}/stage", json={"stage": stage, **extra}, headers=tenant.headers(role)
    )


def _timeline(client, tenant, lead_id):
    return client.get(f"/api/leads/{lead_id}/activities", headers=tenant.headers()).get_json()


def _history(db, lead_id):
    with db.unit_of_work() as session:
        lead = session.get(Lead, lead_id)
        rows = pipeline.stage_history(session=session, clinic_id=lead.clinic_id, lead_id=lead_id)
        return [(r.from_stage, r.to_stage, r.entered_at, r.left_at, r.by) for r in rows]


def test_moving_forward_sets_active_the_stage_time_history_and_a_stage_change_activity(client, tenant, db):
    lead = create_lead(client, tenant)
    resp = _move(client, tenant, lead["id"], "contacted", notes="Left a friendly message")
    assert resp.status_code == 200, resp.get_json()
    moved = resp.get_json()
    assert moved["pipeline_stage"] == "contacted"
    assert moved["status"] == "ACTIVE"
    assert moved["stage_entered_at"] > lead["stage_entered_at"]
    activity = _timeline(client, tenant, lead["id"])[0]
    assert activity["type"] == "STAGE_CHANGE"
    assert (activity["previous_stage"], activity["new_stage"]) == ("new_lead", "contacted")
    assert activity["created_by"] == tenant.users["treatment_coordinator"].id
    history = _history(db, lead["id"])
    assert [(h[0], h[1]) for h in history] == [(None, "new_lead"), ("new_lead", "contacted")]
    assert history[0][3] == history[1][2]  # left the first stay when the second began
    assert history[1][3] is None
    assert history[1][4] == f"user:{tenant.users['treatment_coordinator'].id}"


def test_skipping_stages_forward_is_allowed(client, tenant):
    lead = create_lead(client, tenant)
    assert (
        _move(client, tenant, lead["id"], "pending_decision", hesitation_reason="timing").status_code == 200
    )
    assert _move(client, tenant, lead["id"], "treatment_accepted").status_code == 200


def test_moving_backwards_is_a_409_and_changes_nothing(client, tenant, db):
    lead = create_lead(client, tenant)
    _move(client, tenant, lead["id"], "consultation_completed")
    resp = _move(client, tenant, lead["id"], "contacted")
    assert resp.status_code == 409
    assert get_lead(client, tenant, lead["id"]).get_json()["pipeline_stage"] == "consultation_completed"
    assert len(_history(db, lead["id"])) == 2


def test_the_same_stage_again_is_a_409(client, tenant):
    lead = create_lead(client, tenant)
    assert _move(client, tenant, lead["id"], "new_lead").status_code == 409


def test_backwards_is_judged_by_the_clinics_order(client, tenant):
    by_slug = {s["slug"]: s["id"] for s in stages(client, tenant)}
    order = list(by_slug.values())
    swapped = [order[0], order[2], order[1], *order[3:]]  # consultation_scheduled before contacted
    client.put("/api/pipeline-stages/reorder", json={"stage_ids": swapped}, headers=tenant.headers())
    lead = create_lead(client, tenant)
    assert _move(client, tenant, lead["id"], "contacted").status_code == 200
    assert _move(client, tenant, lead["id"], "consultation_scheduled").status_code == 409


def test_a_move_offers_the_stages_ahead_the_next_first_then_lost_and_each_goes_through(client, db, tenant):
    with db.unit_of_work() as session:
        targets = pipeline.move_targets(pipeline.list_stages(session=session, clinic_id=tenant.id))
    ahead = ["consultation_scheduled", "consultation_completed", "pending_decision", "treatment_accepted"]
    assert targets["new_lead"] == ["contacted", *ahead, "lost"]
    assert targets["contacted"] == [*ahead, "lost"]  # never new_lead: backwards
    assert targets["treatment_accepted"] == ["lost"]
    assert targets["lost"] == targets["treatment_started"] == []  # closed: nowhere (converting is its own)
    for target in targets["contacted"]:
        lead = create_lead(client, tenant)
        assert _move(client, tenant, lead["id"], "contacted").status_code == 200
        extra = {"lost": {"reason": "NO_RESPONSE"}, "pending_decision": {"hesitation_reason": "cost"}}
        assert _move(client, tenant, lead["id"], target, **extra.get(target, {})).status_code == 200, target


def test_to_lost_via_stage_needs_a_reason_and_then_behaves_like_lost(client, tenant):
    lead = create_lead(client, tenant)
    _move(client, tenant, lead["id"], "pending_decision", hesitation_reason="timing")
    resp = _move(client, tenant, lead["id"], "lost")
    assert resp.status_code == 422 and "reason" in resp.get_json()["errors"]["json"]
    resp = _move(client, tenant, lead["id"], "lost", reason="PERHAPS")
    assert resp.status_code == 422 and "reason" in resp.get_json()["errors"]["json"]
    resp = _move(client, tenant, lead["id"], "lost", reason="CHOSE_COMPETITOR", notes="Went across town")
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["status"], body["pipeline_stage"], body["lost_reason"], body["lost_notes"]) == (
        "LOST",
        "lost",
        "CHOSE_COMPETITOR",
        "Went across town",
    )
    assert body["lost_at"] is not None


def test_a_reason_on_a_normal_move_is_a_422(client, tenant):
    lead = create_lead(client, tenant)
    resp = _move(client, tenant, lead["id"], "contacted", reason="OTHER")
    assert resp.status_code == 422 and "reason" in resp.get_json()["errors"]["json"]


def test_unknown_stage_or_treatment_started_via_stage_is_a_422_naming_stage(client, tenant):
    lead = create_lead(client, tenant)
    for stage in ("nowhere", "treatment_started"):
        resp = _move(client, tenant, lead["id"], stage)
        assert resp.status_code == 422 and "stage" in resp.get_json()["errors"]["json"], stage
    assert _move(client, tenant, lead["id"], None).status_code == 422


def test_lost_needs_one_of_the_specs_reasons(client, tenant):
    lead = create_lead(client, tenant)
    h = tenant.headers("treatment_coordinator")
    for body in ({}, {"reason": "BORED"}, {"reason": None}):
        resp = client.post(f"/api/leads/{lead['id']}/lost", json=body, headers=h)
        assert resp.status_code == 422 and "reason" in resp.get_json()["errors"]["json"], body
    resp = client.post(f"/api/leads/{lead['id']}/lost", json={"reason": "COST_FINANCIAL"}, headers=h)
    assert resp.status_code == 200
    activity = _timeline(client, tenant, lead["id"])[0]
    assert (activity["type"], activity["previous_stage"], activity["new_stage"]) == (
        "STAGE_CHANGE",
        "new_lead",
        "lost",
    )


def test_a_lost_lead_cannot_move_be_lost_again_or_be_converted(client, tenant):
    lead = create_lead(client, tenant)
    h = tenant.headers("treatment_coordinator")
    client.post(f"/api/leads/{lead['id']}/lost", json={"reason": "RELOCATED"}, headers=h)
    assert _move(client, tenant, lead["id"], "contacted").status_code == 409
    assert (
        client.post(f"/api/leads/{lead['id']}/lost", json={"reason": "OTHER"}, headers=h).status_code == 409
    )
    assert client.post(f"/api/leads/{lead['id']}/convert", headers=h).status_code == 409
    # Still editable and loggable: a lost family may call back.
    assert client.put(f"/api/leads/{lead['id']}", json={"city": "Reno"}, headers=h).status_code == 200


def test_converting_sets_status_stage_and_time(client, tenant, db):
    lead = create_lead(client, tenant)
    _move(client, tenant, lead["id"], "treatment_accepted")
    resp = client.post(f"/api/leads/{lead['id']}/convert", headers=tenant.headers("treatment_coordinator"))
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["status"], body["pipeline_stage"]) == ("CONVERTED", "treatment_started")
    assert body["converted_at"] is not None and body["converted_at"] == body["stage_entered_at"]
    assert [(h[0], h[1]) for h in _history(db, lead["id"])][-1] == ("treatment_accepted", "treatment_started")


def test_a_converted_lead_is_locked_against_every_change(client, tenant):
    lead = create_lead(client, tenant)
    lead_id = lead["id"]
    h = tenant.headers("clinic_admin")
    assert client.post(f"/api/leads/{lead_id}/convert", headers=h).status_code == 200
    attempts = {
        "put": client.put(f"/api/leads/{lead_id}", json={"city": "X"}, headers=h),
        "stage": client.post(
            f"/api/leads/{lead_id}/stage", json={"stage": "lost", "reason": "OTHER"}, headers=h
        ),
        "stage_forward": client.post(f"/api/leads/{lead_id}/stage", json={"stage": "lost"}, headers=h),
        "lost": client.post(f"/api/leads/{lead_id}/lost", json={"reason": "OTHER"}, headers=h),
        "assign": client.post(
            f"/api/leads/{lead_id}/assign", json={"user_id": tenant.users["clinic_admin"].id}, headers=h
        ),
        "activity": client.post(
            f"/api/leads/{lead_id}/activities", json={"type": "NOTE", "notes": "x"}, headers=h
        ),
        "convert": client.post(f"/api/leads/{lead_id}/convert", headers=h),
    }
    assert {name: resp.status_code for name, resp in attempts.items()} == dict.fromkeys(attempts, 409)
    after = get_lead(client, tenant, lead_id).get_json()
    assert (after["city"], after["status"], after["assigned_to_id"]) == (
        None,
        "CONVERTED",
        lead["assigned_to_id"],
    )
    assert client.get(f"/api/leads/{lead_id}/activities", headers=h).status_code == 200


@pytest.mark.parametrize("role", ["front_desk", "doctor"])
def test_roles_without_update_or_convert_are_refused(client, tenant, role):
    lead = create_lead(client, tenant)
    assert _move(client, tenant, lead["id"], "contacted", role=role).status_code == 403
    assert client.post(f"/api/leads/{lead['id']}/convert", headers=tenant.headers(role)).status_code == 403
