"""A call logged "not interested" or "converted" closes the lead that way (lost for that reason, or
converted), once, when the call's event is processed; other outcomes leave the lead open."""

from __future__ import annotations

import pytest

from app.platform import clock
from tests.automation.kit import run_events
from tests.tasks.taskkit import lead_for


def log_call(client, tenant, lead_id: int, outcome: str) -> None:
    body = {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": outcome}
    resp = client.post(f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()


def lead_now(client, tenant, lead_id: int) -> dict:
    return client.get(f"/api/leads/{lead_id}", headers=tenant.headers("clinic_admin")).get_json()


@pytest.mark.parametrize(
    ("outcome", "status", "stage", "reason"),
    [
        ("not_interested", "LOST", "lost", "NOT_INTERESTED"),
        ("converted", "CONVERTED", "treatment_started", None),
        ("spoke", "NEW", None, None),  # open, as it was
    ],
)
def test_a_calls_outcome_closes_the_lead_as_the_family_decided(
    app, client, tenant, outcome, status, stage, reason
):
    lead = lead_for(client, tenant)
    log_call(client, tenant, lead["id"], outcome)
    run_events(app, lead["id"], clock.now())
    run_events(app, lead["id"], clock.now())  # what closing the lead emitted (its own consumers)
    now = lead_now(client, tenant, lead["id"])
    assert now["status"] == status
    assert now["lost_reason"] == reason
    if stage:
        assert now["pipeline_stage"] == stage


def test_an_outcome_on_a_lead_already_closed_changes_nothing(app, client, tenant):
    lead = lead_for(client, tenant)
    log_call(client, tenant, lead["id"], "not_interested")
    run_events(app, lead["id"], clock.now())
    log_call(client, tenant, lead["id"], "converted")  # a lost lead is not converted by a late entry
    run_events(app, lead["id"], clock.now())
    now = lead_now(client, tenant, lead["id"])
    assert (now["status"], now["lost_reason"]) == ("LOST", "NOT_INTERESTED")
