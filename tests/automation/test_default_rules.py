"""Each default rule end to end: through the API, the events outbox and the ledger, at chosen times."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.bootstrap import bootstrap
from app.domains.outbound.models import Notification
from app.platform import clock
from tests.automation import failing_consumer
from tests.automation.kit import (
    WEEKDAYS_9_TO_5,
    capture_at,
    jobs,
    open_all_day,
    run_due_steps,
    run_events,
    steps_of,
    tasks_of,
)
from tests.automation.outreachkit import process_events
from tests.tasks.taskkit import lead_for, notifications_of, run_at
from tests.workers import subprocess_worker, wait_for


def lead_messages(app, lead_id):
    with app.extensions["followup.db"].unit_of_work() as session:
        stmt = sa.select(Notification).where(
            Notification.lead_id == lead_id, Notification.recipient_user_id.is_(None)
        )
        return list(session.scalars(stmt.order_by(Notification.id)))


def log_call(client, tenant, lead_id, outcome, direction="OUTBOUND", days_ago: int = 0):
    """A call logged now, or `days_ago` (at most one failed attempt a business day counts)."""
    body = {"type": "PHONE_CALL", "direction": direction, "outcome": outcome, "duration_minutes": 1}
    if days_ago:
        body["occurred_at"] = (clock.now() - timedelta(days=days_ago)).isoformat()
    if direction == "INBOUND":
        body.pop("outcome")
    resp = client.post(
        f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_a_lead_captured_friday_night_is_due_five_minutes_after_monday_opening(app, client, tenant):
    resp = client.put(
        "/api/clinic",
        json={"timezone": "America/New_York", "business_hours": WEEKDAYS_9_TO_5},
        headers=tenant.headers(),
    )
    assert resp.status_code == 200
    friday_21h = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # Fri 20 Nov 2026, 21:00 in New York
    lead_id = capture_at(app, tenant, friday_21h, email="jane@example.com")
    assert run_events(app, lead_id, friday_21h + timedelta(seconds=2)) == 1

    [task] = tasks_of(app, lead_id)
    assert task.title == "Initial contact" and task.type == "CALL" and task.priority == "HIGH"
    assert task.due_at == datetime(2026, 11, 23, 14, 5, tzinfo=UTC)  # Mon 09:05 New York
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    assert task.assigned_to_id == lead["assigned_to_id"]
    # The why-trail on the task itself: which rule and version, which event, what was evaluated.
    assert task.origin["kind"] == "automation" and task.origin["rule_version"] == 1
    rules = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    speed = next(r for r in rules if r["default_key"] == "speed_to_lead")
    assert task.origin["rule_id"] == speed["id"]
    told = notifications_of(app, task.assigned_to_id, "new_lead")
    assert len(told) == 1 and "Mon 23 Nov 09:05" in told[0].body


def test_processing_the_same_events_twice_adds_nothing(app, client, tenant):
    now = clock.now()
    open_all_day(client, tenant, now)
    lead_id = capture_at(app, tenant, now)
    [job] = jobs(app, lead_id, "events.process")
    assert run_at(app, job, now) == "done"
    assert run_at(app, job, now) != "done"  # a redelivered message: already done
    assert len(tasks_of(app, lead_id)) == 1
    assert len(steps_of(app, lead_id)) == 2  # the task and the coordinator's notification


def test_a_processing_job_that_fails_after_its_steps_ran_makes_them_once_when_retried(app, client, tenant):
    # The steps of a rule are written at the end of the job with their outcome: a failure later
    # in the same job must take them, the task and the notification back, and the retry make each once.
    now = clock.now()
    open_all_day(client, tenant, now)
    lead_id = capture_at(app, tenant, now)
    [job] = jobs(app, lead_id, "events.process")
    db = app.extensions["followup.db"]
    failing_consumer.FAILURES.clear()
    # An engine whose lead.created consumers end with one that fails once, in the app's Database.
    usual, db.wiring = db.wiring, bootstrap(db.settings, plugins=["tests.automation.failing_consumer"])
    try:
        assert run_at(app, job, now) == "retrying"
        assert tasks_of(app, lead_id) == [] and steps_of(app, lead_id) == []
        # A batch that failed is split: its retry hands each event a job of its own, and those
        # make the steps.
        assert run_at(app, job, now + timedelta(minutes=10)) == "done"
        alone = jobs(app, lead_id, "events.process")
        assert alone and all(run_at(app, j, now + timedelta(minutes=10)) == "done" for j in alone)
    finally:
        db.wiring = usual
    [task] = tasks_of(app, lead_id)
    made = steps_of(app, lead_id)
    assert [(s.action_type, s.status) for s in made] == [("create_task", "done"), ("notify", "done")]
    assert made[0].result["task_id"] == task.id and task.origin["step_id"] == made[0].id
    told = notifications_of(app, task.assigned_to_id, "new_lead")
    assert len(told) == 1 and made[1].result["notification_ids"] == [told[0].id]


def test_a_rule_switched_off_between_two_leads_is_not_applied_to_the_second(app, client, tenant):
    # The rule set is cached per process and checked by a stamp read with the lead: a change made
    # after the first lead was processed must be seen by the next one.
    now = clock.now()
    open_all_day(client, tenant, now)
    first = capture_at(app, tenant, now)
    run_events(app, first, now)
    assert len(tasks_of(app, first)) == 1
    rules = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    speed = next(r for r in rules if r["default_key"] == "speed_to_lead")
    off = {"active": False}
    resp = client.patch(f"/api/follow-up-rules/{speed['id']}", json=off, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    second = capture_at(app, tenant, now)
    run_events(app, second, now)
    assert tasks_of(app, second) == [] and steps_of(app, second) == []


def test_callback_requested_gets_a_call_the_next_business_day(app, client, tenant):
    resp = client.put(
        "/api/clinic",
        json={"timezone": "America/Chicago", "business_hours": WEEKDAYS_9_TO_5, "holiday_country": None},
        headers=tenant.headers(),
    )
    assert resp.status_code == 200
    lead = lead_for(client, tenant)
    log_call(client, tenant, lead["id"], "callback_requested")
    run_events(app, lead["id"], clock.now())

    [callback] = [t for t in tasks_of(app, lead["id"]) if t.title == "Return the requested callback"]
    step = next(s for s in steps_of(app, lead["id"]) if s.result.get("task_id") == callback.id)
    assert callback.due_at == step.run_at
    local_due = callback.due_at.astimezone(ZoneInfo("America/Chicago"))
    assert local_due.weekday() < 5 and 9 <= local_due.hour < 17
    assert local_due.date() > clock.now().astimezone(local_due.tzinfo).date()


def test_three_failed_calls_send_one_break_up_email_and_suggest_mark_lost(app, client, tenant):
    now = clock.now()
    open_all_day(client, tenant, now)
    lead = lead_for(client, tenant)
    client.put(f"/api/leads/{lead['id']}", json={"email": "jane@example.com"}, headers=tenant.headers())
    log_call(client, tenant, lead["id"], "no_answer", days_ago=2)
    log_call(client, tenant, lead["id"], "voicemail", days_ago=1)
    run_events(app, lead["id"], clock.now())
    assert lead_messages(app, lead["id"]) == []  # two failures: not yet

    log_call(client, tenant, lead["id"], "wrong_number")
    log_call(client, tenant, lead["id"], "no_answer")  # a fourth failure must not send a second email
    run_events(app, lead["id"], clock.now())
    run_events(app, lead["id"], clock.now())  # the failed attempts the calls' events counted

    [email] = lead_messages(app, lead["id"])
    assert email.channel == "email" and email.to_address == "jane@example.com"
    assert "close your file" in email.body
    shown = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert shown["suggested_action"] == "mark_lost"
    told = notifications_of(app, lead["assigned_to_id"], "automation")
    assert len(told) == 1 and told[0].title.startswith("Three failed attempts")


def test_a_real_contact_resets_the_failed_attempts(app, client, tenant):
    now = clock.now()
    open_all_day(client, tenant, now)
    lead = lead_for(client, tenant)
    client.put(f"/api/leads/{lead['id']}", json={"email": "jane@example.com"}, headers=tenant.headers())
    for outcome in ("no_answer", "no_answer", "spoke", "no_answer", "voicemail"):
        log_call(client, tenant, lead["id"], outcome)
    run_events(app, lead["id"], clock.now())
    assert lead_messages(app, lead["id"]) == []
    shown = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert shown["suggested_action"] is None


def test_entering_a_stage_with_a_task_template_creates_that_task(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    template = client.post(
        "/api/task-templates",
        json={"name": "Send the treatment plan", "title": "Email the treatment plan", "type": "EMAIL"},
        headers=tenant.headers(),
    ).get_json()
    stages = client.get("/api/pipeline-stages", headers=tenant.headers()).get_json()
    accepted = next(s for s in stages if s["slug"] == "treatment_accepted")
    resp = client.put(
        f"/api/pipeline-stages/{accepted['id']}",
        json={"task_template_id": template["id"]},
        headers=tenant.headers(),
    )
    assert resp.status_code == 200, resp.get_json()
    lead = lead_for(client, tenant)
    client.post(f"/api/leads/{lead['id']}/stage", json={"stage": "contacted"}, headers=tenant.headers())
    client.post(
        f"/api/leads/{lead['id']}/stage", json={"stage": "treatment_accepted"}, headers=tenant.headers()
    )
    run_events(app, lead["id"], clock.now())
    templated = [t for t in tasks_of(app, lead["id"]) if t.title == "Email the treatment plan"]
    assert len(templated) == 1 and templated[0].type == "EMAIL"


def test_consultation_scheduled_sends_the_lead_a_confirmation(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    client.put(f"/api/leads/{lead['id']}", json={"email": "jane@example.com"}, headers=tenant.headers())
    booked = client.post(
        f"/api/leads/{lead['id']}/consultations",
        json={"starts_at": (clock.now() + timedelta(days=3)).isoformat()},
        headers=tenant.headers(),
    )
    assert booked.status_code == 201, booked.get_json()
    process_events(app, app.extensions["followup.db"], clock.now())
    [confirmation] = lead_messages(app, lead["id"])
    assert confirmation.title == "Your consultation at Smile Orthodontics"


def test_a_delayed_step_runs_at_its_time_through_the_ledger(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    rule = client.post(
        "/api/follow-up-rules",
        json={
            "name": "Nudge the owner an hour after a note",
            "trigger": "activity.logged",
            "conditions": [{"field": "event.activity_type", "operator": "equals", "value": "NOTE"}],
            "actions": [
                {
                    "type": "notify",
                    "lead_owner": True,
                    "title": "Revisit {{ first_name }}",
                    "delay": {"amount": 1, "unit": "hours"},
                }
            ],
        },
        headers=tenant.headers(),
    ).get_json()
    lead = lead_for(client, tenant)
    client.post(
        f"/api/leads/{lead['id']}/activities", json={"type": "NOTE", "notes": "x"}, headers=tenant.headers()
    )
    run_events(app, lead["id"], clock.now())
    [step] = [s for s in steps_of(app, lead["id"]) if s.rule_id == rule["id"]]
    assert step.status == "scheduled"
    assert run_due_steps(app, lead["id"], clock.now()) == 0  # not yet
    assert run_due_steps(app, lead["id"], clock.now() + timedelta(hours=1, seconds=5)) == 1
    assert [n.title for n in notifications_of(app, lead["assigned_to_id"], "automation")] == ["Revisit Jane"]


def test_a_real_worker_makes_the_initial_call_task(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    with subprocess_worker(app.config["SETTINGS"]):
        wait_for(lambda: tasks_of(app, lead["id"]), timeout=60)
    [task] = tasks_of(app, lead["id"])
    assert task.title == "Initial contact" and task.origin["kind"] == "automation"


def test_an_inbound_reply_after_two_failed_calls_resets_the_count(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    client.put(f"/api/leads/{lead['id']}", json={"email": "jane@example.com"}, headers=tenant.headers())
    log_call(client, tenant, lead["id"], "no_answer", days_ago=6)
    log_call(client, tenant, lead["id"], "voicemail", days_ago=5)
    reply = client.post(
        f"/api/leads/{lead['id']}/activities",
        json={
            "type": "SMS",
            "direction": "INBOUND",
            "notes": "Call me tomorrow",
            "occurred_at": (clock.now() - timedelta(days=4)).isoformat(),
        },
        headers=tenant.headers("treatment_coordinator"),
    )
    assert reply.status_code == 201
    log_call(client, tenant, lead["id"], "no_answer", days_ago=3)  # one since the reply: no break-up
    run_events(app, lead["id"], clock.now())
    assert lead_messages(app, lead["id"]) == []
    log_call(client, tenant, lead["id"], "no_answer", days_ago=2)
    log_call(client, tenant, lead["id"], "no_answer", days_ago=1)  # the third in a row since the reply
    run_events(app, lead["id"], clock.now())
    run_events(app, lead["id"], clock.now())  # the failed attempts the calls' events counted
    assert len(lead_messages(app, lead["id"])) == 1
