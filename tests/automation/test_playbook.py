"""The orthodontic playbook in the default rules: a missed consultation gets a call in 15 minutes;
pending_decision asks why the family hesitates, rules test it and analytics count it."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.platform import clock
from tests.automation.kit import open_all_day, run_events, steps_of, tasks_of
from tests.tasks.taskkit import lead_for


def _move(client, tenant, lead_id, stage, **extra):
    return client.post(
        f"/api/leads/{lead_id}/stage", json={"stage": stage, **extra}, headers=tenant.headers()
    )


def test_a_missed_consultation_gets_an_urgent_call_due_in_15_minutes(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    resp = client.post(
        f"/api/leads/{lead['id']}/activities",
        json={"type": "CONSULTATION_NO_SHOW", "notes": "did not come"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert resp.status_code == 201, resp.get_json()
    missed_at = datetime.fromisoformat(resp.get_json()["occurred_at"])
    run_events(app, lead["id"], clock.now())
    [call] = [t for t in tasks_of(app, lead["id"]) if t.title == "Call about the missed consultation"]
    assert call.type == "CALL" and call.priority == "URGENT"
    assert call.assigned_to_id == lead["assigned_to_id"]
    assert abs(call.due_at - (missed_at + timedelta(minutes=15))) < timedelta(seconds=2)
    rules = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    no_show = next(r for r in rules if r["default_key"] == "consultation_no_show")
    assert call.origin["rule_id"] == no_show["id"]  # an editable default rule
    assert any(s.result.get("task_id") == call.id for s in steps_of(app, lead["id"]))


def test_pending_decision_needs_a_hesitation_reason_that_rules_test_and_analytics_count(app, client, tenant):
    lead = lead_for(client, tenant)
    missing = _move(client, tenant, lead["id"], "pending_decision")
    assert missing.status_code == 422 and "hesitation_reason" in missing.get_json()["errors"]["json"]
    wrong = _move(client, tenant, lead["id"], "pending_decision", hesitation_reason="weather")
    assert wrong.status_code == 422 and "hesitation_reason" in wrong.get_json()["errors"]["json"]
    elsewhere = _move(client, tenant, lead["id"], "contacted", hesitation_reason="cost")
    assert elsewhere.status_code == 422 and "hesitation_reason" in elsewhere.get_json()["errors"]["json"]

    rule = {
        "name": "Financing worries: send the options",
        "trigger": "lead.stage_changed",
        "conditions": [{"field": "lead.hesitation_reason", "operator": "equals", "value": "financing"}],
        "actions": [{"type": "create_task", "title": "Send the financing options", "task_type": "EMAIL"}],
    }
    made = client.post("/api/follow-up-rules", json=rule, headers=tenant.headers())
    assert made.status_code == 201, made.get_json()

    moved = _move(client, tenant, lead["id"], "pending_decision", hesitation_reason="financing")
    assert moved.status_code == 200 and moved.get_json()["hesitation_reason"] == "financing"
    run_events(app, lead["id"], clock.now())
    assert "Send the financing options" in [t.title for t in tasks_of(app, lead["id"])]

    other = lead_for(client, tenant)
    assert _move(client, tenant, other["id"], "pending_decision", hesitation_reason="cost").status_code == 200
    run_events(app, other["id"], clock.now())
    assert "Send the financing options" not in [t.title for t in tasks_of(app, other["id"])]

    report = client.get("/api/leads/analytics/hesitation-reasons", headers=tenant.headers()).get_json()
    by_reason = {row["reason"]: row for row in report["rows"]}
    assert report["with_reason"] == 2
    assert by_reason["financing"]["leads"] == 1 and by_reason["cost"]["leads"] == 1
    assert by_reason["financing"]["share"] == 0.5 and by_reason["timing"]["leads"] == 0
