"""A consultation is not attended before it starts (issue 76 item 7): a check-in before its start is a
422 naming checked_in_at, and a lead whose consultation booked here has not started is not moved to
consultation_completed by hand (a 422 naming stage); once it has started, both go through."""

from __future__ import annotations

from datetime import timedelta

from app.platform import clock
from tests.consultations.kit import act, book, consultation
from tests.consultations.test_timers import clock_at
from tests.leadkit import create_lead, get_lead

COMPLETED = "consultation_completed"


def _move(client, tenant, lead_id: int, stage: str):
    return client.post(f"/api/leads/{lead_id}/stage", json={"stage": stage}, headers=tenant.headers())


def _stage(client, tenant, lead_id: int) -> str:
    return get_lead(client, tenant, lead_id).get_json()["pipeline_stage"]


def test_a_check_in_before_the_start_is_refused_naming_checked_in_at(client, db, tenant, monkeypatch):
    lead = create_lead(client, tenant)
    start = clock.now() + timedelta(days=2)
    booked = book(client, tenant, lead["id"], start)
    refused = act(client, tenant, booked["id"], "check-in", expect=422)
    assert list(refused["errors"]["json"]) == ["checked_in_at"]
    assert "cannot be checked in before it starts" in refused["message"]
    assert consultation(db, booked["id"]).status == "scheduled"
    assert _stage(client, tenant, lead["id"]) == "consultation_scheduled"
    with clock_at(monkeypatch, start + timedelta(minutes=5)):
        # Marked after the start, but as of an arrival before it: still attended before it started.
        early = (start - timedelta(minutes=10)).isoformat()
        refused = act(client, tenant, booked["id"], "check-in", expect=422, checked_in_at=early)
        assert list(refused["errors"]["json"]) == ["checked_in_at"]
        attended = act(client, tenant, booked["id"], "check-in")
    assert attended["status"] == "attended"
    assert _stage(client, tenant, lead["id"]) == COMPLETED


def test_consultation_completed_by_hand_waits_for_the_booked_consultation_to_start(
    client, tenant, monkeypatch
):
    lead = create_lead(client, tenant)
    start = clock.now() + timedelta(days=2)
    book(client, tenant, lead["id"], start)
    refused = _move(client, tenant, lead["id"], COMPLETED)
    assert refused.status_code == 422
    assert list(refused.get_json()["errors"]["json"]) == ["stage"]
    assert "waits until it has started" in refused.get_json()["message"]
    assert _stage(client, tenant, lead["id"]) == "consultation_scheduled"
    with clock_at(monkeypatch, start + timedelta(minutes=1)):
        assert _move(client, tenant, lead["id"], COMPLETED).status_code == 200
    assert _stage(client, tenant, lead["id"]) == COMPLETED


def test_a_lead_whose_only_consultation_was_cancelled_may_be_moved_to_consultation_completed(client, tenant):
    lead = create_lead(client, tenant)
    booked = book(client, tenant, lead["id"], clock.now() + timedelta(days=2))
    act(client, tenant, booked["id"], "cancel")
    assert _move(client, tenant, lead["id"], COMPLETED).status_code == 200
