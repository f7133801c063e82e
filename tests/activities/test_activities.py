"""The activity log: what clients may log, validation, the timeline's order and paging, isolation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityType
from app.domains.leads import service as leads
from app.platform import clock
from tests.leadkit import create_lead


@pytest.fixture
def lead(client, tenant):
    return create_lead(client, tenant)


def _log(client, tenant, lead_id, role="treatment_coordinator", **body):
    return client.post(f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers(role))


def _timeline(client, tenant, lead_id, query="", role="treatment_coordinator"):
    resp = client.get(f"/api/leads/{lead_id}/activities{query}", headers=tenant.headers(role))
    assert resp.status_code == 200, resp.get_json()
    return resp


@pytest.mark.parametrize(
    "body",
    [
        {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "voicemail", "duration_minutes": 1},
        {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "callback_requested"},
        {"type": "PHONE_CALL", "direction": "INBOUND", "duration_minutes": 12, "notes": "Asked about cost"},
        {"type": "PHONE_CALL", "direction": "INBOUND", "outcome": "spoke"},
        {"type": "EMAIL", "direction": "OUTBOUND", "notes": "Sent the brochure"},
        {"type": "SMS", "direction": "INBOUND", "notes": "Can we do Tuesday?"},
        {"type": "IN_PERSON", "duration_minutes": 30},
        {"type": "NOTE", "notes": "Mother prefers afternoons"},
        {"type": "DOCUMENT_SENT", "notes": "Financing options PDF"},
        {"type": "CONSULTATION_SCHEDULED", "notes": "Thu 4pm"},
        {"type": "CONSULTATION_COMPLETED", "duration_minutes": 45},
    ],
)
def test_clients_log_each_kind_of_interaction(client, tenant, lead, body):
    resp = _log(client, tenant, lead["id"], **body)
    assert resp.status_code == 201, resp.get_json()
    logged = resp.get_json()
    for key, value in body.items():
        assert logged[key] == value
    assert logged["lead_id"] == lead["id"]
    assert logged["created_by"] == tenant.users["treatment_coordinator"].id
    assert logged["actor"] == f"user:{tenant.users['treatment_coordinator'].id}"
    assert _timeline(client, tenant, lead["id"]).get_json()[0]["id"] == logged["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "STAGE_CHANGE"}, "type"),
        ({"type": "ASSIGNMENT_CHANGE"}, "type"),
        ({"type": "TASK_COMPLETED"}, "type"),
        ({"type": "CARRIER_PIGEON"}, "type"),
        ({}, "type"),
        ({"type": "PHONE_CALL", "outcome": "spoke"}, "direction"),
        ({"type": "EMAIL"}, "direction"),
        ({"type": "SMS", "direction": "SIDEWAYS"}, "direction"),
        ({"type": "PHONE_CALL", "direction": "OUTBOUND"}, "outcome"),
        ({"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "hung_up"}, "outcome"),
        ({"type": "NOTE", "notes": "x", "outcome": "spoke"}, "outcome"),
        ({"type": "PHONE_CALL", "direction": "INBOUND", "duration_minutes": -1}, "duration_minutes"),
        ({"type": "PHONE_CALL", "direction": "INBOUND", "duration_minutes": "ten"}, "duration_minutes"),
        ({"type": "EMAIL", "direction": "OUTBOUND", "duration_minutes": 3}, "duration_minutes"),
        ({"type": "NOTE", "occurred_at": "yesterday"}, "occurred_at"),
        ({"type": "NOTE", "previous_stage": "new_lead"}, "previous_stage"),
        ({"type": "NOTE", "created_by": 1}, "created_by"),
    ],
)
def test_bad_activities_are_a_422_naming_the_field_and_store_nothing(client, tenant, lead, body, field):
    before = len(_timeline(client, tenant, lead["id"]).get_json())
    resp = _log(client, tenant, lead["id"], **body)
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]["json"]
    assert len(_timeline(client, tenant, lead["id"]).get_json()) == before


def test_occurred_at_may_be_in_the_past_or_a_moment_ahead_but_not_the_future(client, tenant, lead):
    past = (clock.now() - timedelta(days=2)).isoformat()
    assert _log(client, tenant, lead["id"], type="NOTE", occurred_at=past).status_code == 201
    skew = (clock.now() + timedelta(seconds=30)).isoformat()
    assert _log(client, tenant, lead["id"], type="NOTE", occurred_at=skew).status_code == 201
    future = (clock.now() + timedelta(minutes=5)).isoformat()
    resp = _log(client, tenant, lead["id"], type="NOTE", occurred_at=future)
    assert resp.status_code == 422 and "occurred_at" in resp.get_json()["errors"]["json"]


def test_occurred_at_defaults_to_now_and_naive_times_are_utc(client, tenant, lead):
    before = clock.now()
    logged = _log(client, tenant, lead["id"], type="NOTE").get_json()
    assert before <= datetime.fromisoformat(logged["occurred_at"]) <= clock.now()
    naive = _log(client, tenant, lead["id"], type="NOTE", occurred_at="2024-02-03T10:00:00").get_json()
    assert datetime.fromisoformat(naive["occurred_at"]) == datetime(2024, 2, 3, 10, tzinfo=UTC)


def test_the_timeline_is_newest_first_by_when_it_happened_then_by_id(client, tenant, lead):
    base = clock.now() - timedelta(hours=5)
    at = {name: (base + timedelta(hours=h)).isoformat() for name, h in (("a", 1), ("b", 3), ("c", 2))}
    ids = {
        name: _log(client, tenant, lead["id"], type="NOTE", notes=name, occurred_at=when).get_json()["id"]
        for name, when in at.items()
    }
    same_time = at["c"]
    twin = _log(client, tenant, lead["id"], type="NOTE", notes="c2", occurred_at=same_time).get_json()["id"]
    notes = [a["notes"] for a in _timeline(client, tenant, lead["id"], "?type=NOTE").get_json()]
    assert notes == ["b", "c2", "c", "a"]
    assert twin > ids["c"]
    # The creation-time assignment happened now, after every back-dated note.
    assert _timeline(client, tenant, lead["id"]).get_json()[0]["type"] == "ASSIGNMENT_CHANGE"


def test_the_timeline_is_paginated_and_filterable_by_type(client, tenant, lead):
    for i in range(7):
        _log(client, tenant, lead["id"], type="NOTE", notes=f"n{i}")
    _log(client, tenant, lead["id"], type="SMS", direction="OUTBOUND")
    resp = _timeline(client, tenant, lead["id"], "?page=2&page_size=3")
    assert json.loads(resp.headers["X-Pagination"])["total"] == 9  # 7 notes, 1 SMS, 1 assignment
    assert len(resp.get_json()) == 3
    assert [a["notes"] for a in resp.get_json()] == ["n4", "n3", "n2"]
    both = _timeline(client, tenant, lead["id"], "?type=SMS&type=ASSIGNMENT_CHANGE").get_json()
    assert sorted(a["type"] for a in both) == ["ASSIGNMENT_CHANGE", "SMS"]
    resp = client.get(f"/api/leads/{lead['id']}/activities?type=BOGUS", headers=tenant.headers())
    assert resp.status_code == 422 and "type" in resp.get_json()["errors"]["query"]


def test_other_domains_record_system_activities_through_the_service(app, client, tenant, db, lead):
    with app.app_context(), db.unit_of_work() as session:
        row = leads.get_lead(session=session, clinic_id=tenant.id, lead_id=lead["id"])
        activities.record(
            session=session,
            lead=row,
            facts=activities.ActivityFacts(type=ActivityType.TASK_COMPLETED, at=clock.now(), notes="Done"),
        )
    latest = _timeline(client, tenant, lead["id"]).get_json()[0]
    assert (latest["type"], latest["actor"], latest["notes"]) == ("TASK_COMPLETED", "system", "Done")


def test_front_desk_may_read_but_not_log(client, tenant, lead):
    assert _log(client, tenant, lead["id"], role="front_desk", type="NOTE").status_code == 403
    assert (
        client.get(f"/api/leads/{lead['id']}/activities", headers=tenant.headers("front_desk")).status_code
        == 200
    )


def test_an_unknown_lead_is_a_404(client, tenant):
    assert _log(client, tenant, 999999, type="NOTE").status_code == 404
    assert client.get("/api/leads/999999/activities", headers=tenant.headers()).status_code == 404
