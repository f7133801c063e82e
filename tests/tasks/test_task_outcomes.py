"""Task outcomes over the API: completion records one, the timeline shows it, analytics counts it."""

from datetime import datetime, timedelta

from app.platform import clock
from tests.tasks.taskkit import in_minutes, iso, lead_for
from tests.tasks.test_tasks_api import new_task


def complete(client, tenant, task_id, expect=200, **body):
    resp = client.post(f"/api/leads/tasks/{task_id}/complete", json=body, headers=tenant.headers())
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def test_outcome_is_stored_and_shown_on_the_timeline(client, tenant):
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"])
    done = complete(client, tenant, task["id"], outcome="no_answer", notes="rang twice")
    assert done["status"] == "COMPLETED" and done["outcome"] == "no_answer"
    assert done["outcome_notes"] == "rang twice"
    timeline = client.get(
        f"/api/leads/{lead['id']}/activities?type=TASK_COMPLETED", headers=tenant.headers()
    ).get_json()
    assert timeline[0]["details"]["outcome"] == "no_answer"
    assert timeline[0]["details"]["task_id"] == task["id"] and timeline[0]["notes"] == "rang twice"
    # Without an outcome a completion means done.
    plain = complete(client, tenant, new_task(client, tenant, lead["id"])["id"])
    assert plain["outcome"] == "done"


def test_rescheduled_with_a_time_makes_the_follow_up_task(client, tenant):
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"], title="Call about braces", priority="HIGH")
    later = clock.now() + timedelta(days=2)
    complete(client, tenant, task["id"], outcome="rescheduled", reschedule_to=iso(later))
    open_tasks = client.get(
        f"/api/leads/{lead['id']}/tasks?status=PENDING", headers=tenant.headers()
    ).get_json()
    follow_up = [t for t in open_tasks if t["previous_task_id"] == task["id"]]
    assert len(follow_up) == 1
    assert follow_up[0]["title"] == "Call about braces" and follow_up[0]["priority"] == "HIGH"
    assert abs((datetime.fromisoformat(follow_up[0]["due_at"]) - later).total_seconds()) < 1


def test_bad_outcomes_are_422_and_leave_the_task_open(client, tenant):
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"])
    for body, field in (
        ({"outcome": "maybe"}, "outcome"),
        ({"outcome": "done", "reschedule_to": iso(in_minutes(60))}, "reschedule_to"),
        ({"outcome": "rescheduled", "reschedule_to": iso(in_minutes(-60))}, "reschedule_to"),
    ):
        resp = client.post(f"/api/leads/tasks/{task['id']}/complete", json=body, headers=tenant.headers())
        assert resp.status_code == 422, (body, resp.get_json())
        assert field in str(resp.get_json()["errors"]), (body, resp.get_json())
    still = client.get(f"/api/leads/tasks/{task['id']}", headers=tenant.headers()).get_json()
    assert still["status"] == "PENDING" and still["outcome"] is None


def test_follow_up_analytics_counts_outcomes(client, tenant):
    lead = lead_for(client, tenant)
    for outcome in ("done", "done", "no_answer", "not_needed"):
        complete(client, tenant, new_task(client, tenant, lead["id"])["id"], outcome=outcome)
    new_task(client, tenant, lead["id"])  # still open: no outcome
    start, end = (iso(clock.now() + timedelta(days=d)).replace("+", "%2B") for d in (-1, 1))
    report = client.get(
        f"/api/leads/analytics/follow-up?from={start}&to={end}", headers=tenant.headers()
    ).get_json()
    assert report["outcome_done"] == 2 and report["outcome_no_answer"] == 1
    assert report["outcome_not_needed"] == 1 and report["outcome_rescheduled"] == 0
    csv = client.get(
        f"/api/leads/analytics/follow-up?from={start}&to={end}",
        headers={**tenant.headers(), "Accept": "text/csv"},
    )
    assert "outcome_no_answer" in csv.get_data(as_text=True).splitlines()[0]
