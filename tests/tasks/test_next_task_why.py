"""Why this task, in the answer of POST /api/me/next-task: the lead's SLA clock in warning with the
time left, the best time to call from the clinic's call history, and null for what is not known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.platform import clock
from tests.automation.kit import capture_at, open_all_day, run_events, tasks_of
from tests.tasks.sla.test_sla_clocks import SLA, _clocks, _job
from tests.tasks.taskkit import in_minutes, iso, lead_for, run_at
from tests.tasks.test_next_task import COORDINATOR, next_task
from tests.tasks.test_tasks_api import new_task

WHY_FIELDS = {
    "scope",
    "priority",
    "overdue_minutes",
    "due_in_minutes",
    "lead_score",
    "sla",
    "best_contact_time",
    "summary",
}


def test_unknown_reasons_are_null_not_missing(client, tenant):
    lead = lead_for(client, tenant)  # no events run: no SLA clock; no call history; not scored
    task = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(20)))
    why = next_task(client, tenant)["why"]
    assert set(why) == WHY_FIELDS
    assert why["scope"] == "yours" and 19 <= why["due_in_minutes"] <= 20
    assert why["overdue_minutes"] is None and why["lead_score"] is None
    assert why["sla"] is None and why["best_contact_time"] is None
    renewed = client.post(f"/api/me/next-task/{task['id']}/renew", headers=tenant.headers(COORDINATOR))
    assert renewed.status_code == 200 and set(renewed.get_json()["why"]) == WHY_FIELDS


def test_a_lead_whose_sla_is_in_warning_says_so_with_the_time_left(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    resp = client.put("/api/clinic", json={"settings": {"sla": SLA}}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    captured = clock.now() - timedelta(minutes=25)  # speed to lead: 30 minutes, warning at 24
    lead_id = capture_at(app, tenant, captured)
    assigned = client.post(
        f"/api/leads/{lead_id}/assign",
        json={"user_id": tenant.users[COORDINATOR].id},
        headers=tenant.headers("clinic_admin"),
    )
    assert assigned.status_code == 200, assigned.get_json()
    run_events(app, lead_id, captured + timedelta(seconds=1))  # the clocks and the initial-contact call
    speed = _clocks(client, tenant, lead_id)["speed_to_lead"]
    warn = _job(app, speed["id"], "sla.warn")
    assert run_at(app, warn, warn.due_at) == "done"

    claim = next_task(client, tenant)
    [call] = [t for t in tasks_of(app, lead_id) if t.title == "Initial contact"]
    assert claim["task"]["id"] == call.id
    why = claim["why"]
    assert why["sla"]["kind"] == "speed_to_lead" and why["sla"]["status"] == "warning"
    assert datetime.fromisoformat(why["sla"]["due_at"]) == captured + timedelta(minutes=30)
    assert 4 <= why["sla"]["minutes_left"] <= 5
    assert f"speed to lead SLA in warning: {why['sla']['minutes_left']} min left" in why["summary"]
    assert why["overdue_minutes"] >= 19 and why["due_in_minutes"] is None
    assert why["best_contact_time"] is None  # no calls yet to judge by


def _log_call(client, tenant, lead_id: int, at: datetime, outcome: str) -> None:
    body = {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": outcome, "occurred_at": iso(at)}
    resp = client.post(
        f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert resp.status_code == 201, resp.get_json()


def test_a_lead_with_call_history_gets_its_best_contact_time(client, tenant):
    open_all_day(client, tenant, clock.now())  # midday at the clinic; a whole-hour UTC offset
    history = lead_for(client, tenant)
    week_ago = clock.now() - timedelta(days=7)
    answered_at, unanswered_at = week_ago + timedelta(hours=2), week_ago
    for _ in range(5):  # answered two hours later in the day, unanswered at this hour
        _log_call(client, tenant, history["id"], answered_at, "spoke")
        _log_call(client, tenant, history["id"], unanswered_at, "no_answer")

    lead = lead_for(client, tenant)
    new_task(client, tenant, lead["id"], due_at=iso(in_minutes(10)))
    why = next_task(client, tenant)["why"]
    best = why["best_contact_time"]
    expected = (answered_at + timedelta(days=7)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(best["starts_at"]) == expected
    assert datetime.fromisoformat(best["ends_at"]) == expected + timedelta(hours=1)
    assert best["is_now"] is False and best["calls"] == 5
    assert best["rate"] > 0.5 > best["rate_now"]  # smoothed toward the clinic's rate of one in two
    assert "best hour to call" in why["summary"]
