"""The rules-engine reference's rules (issue 60 item 5), end to end: a lead's priority (staff, capture,
rules, lists), the seeded urgent call and its escalation, the weekly follow-up while a lead is
pending its decision, and a dentist's referral. Through the API and the events outbox (a real
worker for what happens now), the ledger's later jobs run at chosen times."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from app.platform import clock
from tests.automation.kit import jobs, open_all_day, run_due_steps, run_events, steps_of, tasks_of
from tests.leadkit import create_lead, post_web_form, source_ids
from tests.tasks.taskkit import jobs_of_task, lead_for, notifications_of, run_at
from tests.workers import thread_worker, wait_for

URGENT_CALL = "Urgent: call now"
CHECK_IN = "Check in on the treatment decision"
REFERRAL = "Referral: thank the referring office and call the family"


def titled(app, lead_id: int, title: str):
    return [t for t in tasks_of(app, lead_id) if t.title == title]


def read(client, tenant, lead_id: int) -> dict:
    resp = client.get(f"/api/leads/{lead_id}", headers=tenant.headers("clinic_admin"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def put_lead(client, tenant, lead_id: int, body: dict):
    return client.put(f"/api/leads/{lead_id}", json=body, headers=tenant.headers("treatment_coordinator"))


def processed(app, lead_id: int) -> bool:
    return jobs(app, lead_id, "events.process") == []


# --- urgent ---------------------------------------------------------------------------------------


def test_a_lead_captured_urgent_gets_a_call_in_five_minutes_escalated_after_fifteen(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    form = {"submission_id": "urgent-1", "name": "Ann Lee", "phone": "(415) 555-2671", "priority": "URGENT"}
    with thread_worker(app):
        resp = post_web_form(client, tenant.clinic, form)
        assert resp.status_code == 201, resp.get_json()
        lead_id = resp.get_json()["lead_id"]
        wait_for(lambda: processed(app, lead_id) and titled(app, lead_id, URGENT_CALL), timeout=60)
    lead = read(client, tenant, lead_id)
    assert lead["priority"] == "urgent"
    [call] = titled(app, lead_id, URGENT_CALL)
    captured = datetime.fromisoformat(lead["created_at"])
    assert call.priority == "URGENT" and call.type == "CALL"
    assert abs(call.due_at - (captured + timedelta(minutes=5))) < timedelta(seconds=2)
    assert call.assigned_to_id == lead["assigned_to_id"]
    # One call: speed to lead leaves an urgent lead to the urgent rule.
    assert [t.title for t in tasks_of(app, lead_id)] == [URGENT_CALL]

    [escalation] = jobs_of_task(app, call.id, "task.escalate", "pending")
    assert abs(escalation.due_at - (captured + timedelta(minutes=15))) < timedelta(seconds=2)
    admin = tenant.users["clinic_admin"].id
    assert notifications_of(app, admin, "escalation") == []
    assert run_at(app, escalation, escalation.due_at) == "done"
    [told] = notifications_of(app, admin, "escalation")
    assert told.title.startswith("Overdue 10 min with no contact")
    task = client.get(f"/api/leads/tasks/{call.id}", headers=tenant.headers()).get_json()
    assert task["escalated_at"] is not None


def test_an_urgent_call_done_in_time_is_not_escalated(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = create_lead(client, tenant, priority="urgent")
    run_events(app, lead["id"], clock.now())
    [call] = titled(app, lead["id"], URGENT_CALL)
    done = client.post(
        f"/api/leads/tasks/{call.id}/complete",
        json={"outcome": "done", "notes": "spoke with them"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert done.status_code == 200, done.get_json()
    assert jobs_of_task(app, call.id, "task.escalate", "pending") == []
    assert notifications_of(app, tenant.users["clinic_admin"].id, "escalation") == []


def test_a_lead_made_urgent_by_staff_gets_the_urgent_call_once(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    run_events(app, lead["id"], clock.now())
    assert titled(app, lead["id"], URGENT_CALL) == []
    assert read(client, tenant, lead["id"])["priority"] == "normal"

    resp = put_lead(client, tenant, lead["id"], {"priority": "urgent"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["priority"] == "urgent"
    run_events(app, lead["id"], clock.now())
    # The same priority again, and another change while urgent: no second call.
    assert put_lead(client, tenant, lead["id"], {"priority": "urgent"}).status_code == 200
    assert put_lead(client, tenant, lead["id"], {"city": "Oakland"}).status_code == 200
    run_events(app, lead["id"], clock.now())
    [call] = titled(app, lead["id"], URGENT_CALL)
    assert call.priority == "URGENT" and call.assigned_to_id == lead["assigned_to_id"]
    # On the timeline, by whom (each change once), and audited like any change of the lead's details.
    timeline = client.get(f"/api/leads/{lead['id']}/activities", headers=tenant.headers()).get_json()
    [change] = [a for a in timeline if a["type"] == "PRIORITY_CHANGE"]
    by = f"user:{tenant.users['treatment_coordinator'].id}"
    assert change["details"] == {"from": "normal", "to": "urgent", "by": by}
    assert change["created_by"] == tenant.users["treatment_coordinator"].id
    trail = client.get(f"/api/audit-events?subject=lead:{lead['id']}", headers=tenant.headers("clinic_admin"))
    assert trail.status_code == 200, trail.get_json()
    changes = [e["after"] for e in trail.get_json() if e["action"] == "lead.update"]
    assert {"priority": "urgent"} in changes


def test_bad_priorities_are_refused_naming_the_field(app, client, tenant):
    lead = create_lead(client, tenant)
    resp = put_lead(client, tenant, lead["id"], {"priority": "asap"})
    assert resp.status_code == 422
    assert "priority" in resp.get_json()["errors"]["json"]
    assert put_lead(client, tenant, lead["id"], {"priority": None}).status_code == 422
    made = client.post(
        "/api/leads", json={"first_name": "A", "last_name": "B", "priority": 3}, headers=tenant.headers()
    )
    assert made.status_code == 422 and "priority" in made.get_json()["errors"]["json"]
    form = {"submission_id": "bad-priority", "name": "Ann Lee", "phone": "(415) 555-2671", "priority": "soon"}
    resp = post_web_form(client, tenant.clinic, form)
    assert resp.status_code == 422 and "priority" in resp.get_json()["errors"]["json"]
    listed = client.get("/api/leads?priority=soon", headers=tenant.headers())
    assert listed.status_code == 422 and "priority" in listed.get_json()["errors"]["query"]


def test_the_lead_list_filters_and_sorts_by_priority(app, client, tenant):
    ids = {p: create_lead(client, tenant, priority=p)["id"] for p in ("high", "normal", "urgent")}
    urgent = client.get("/api/leads?priority=urgent", headers=tenant.headers()).get_json()
    assert [lead["id"] for lead in urgent] == [ids["urgent"]]
    ranked = client.get("/api/leads?sort=-priority", headers=tenant.headers()).get_json()
    assert [lead["id"] for lead in ranked] == [ids["urgent"], ids["high"], ids["normal"]]
    exported = client.get("/api/leads/export?priority=high", headers=tenant.headers())
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [(int(row["id"]), row["priority"]) for row in rows] == [(ids["high"], "high")]


# --- priority in rules ----------------------------------------------------------------------------


def make_rule(client, tenant, body: dict):
    return client.post("/api/follow-up-rules", json=body, headers=tenant.headers("clinic_admin"))


def test_a_rule_on_priority_fires_for_a_high_lead_and_not_a_normal_one(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    rule = make_rule(
        client,
        tenant,
        {
            "name": "Important families: a personal note",
            "trigger": "lead.created",
            "conditions": [{"field": "lead.priority", "operator": "in", "value": ["high", "urgent"]}],
            "actions": [
                {"type": "create_task", "title": "Personal note", "task_type": "EMAIL"},
                {
                    "type": "create_task",
                    "title": "Add to the newsletter",
                    "task_type": "EMAIL",
                    "priority": "LOW",
                    "follow_lead_priority": False,  # the rule says otherwise: its own priority
                },
            ],
        },
    )
    assert rule.status_code == 201, rule.get_json()
    high = create_lead(client, tenant, priority="high")
    normal = create_lead(client, tenant)
    run_events(app, high["id"], clock.now())
    run_events(app, normal["id"], clock.now())
    [note] = titled(app, high["id"], "Personal note")
    assert note.priority == "HIGH"  # the rule asked NORMAL (the default): a high lead's task is HIGH
    assert [t.title for t in tasks_of(app, high["id"]) if t.type == "CALL"] == ["Initial contact"]
    [newsletter] = titled(app, high["id"], "Add to the newsletter")
    assert newsletter.priority == "LOW"
    assert titled(app, normal["id"], "Personal note") == []
    assert {t.priority for t in tasks_of(app, normal["id"])} == {"HIGH"}  # speed to lead's own


def test_a_rule_can_make_a_lead_urgent_and_the_urgent_call_follows(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    rule = make_rule(
        client,
        tenant,
        {
            "name": "Second opinions are urgent",
            "trigger": "lead.created",
            "conditions": [
                {"field": "lead.treatment_interest", "operator": "contains", "value": "SECOND_OPINION"}
            ],
            "actions": [{"type": "set_priority", "priority": "urgent"}],
        },
    )
    assert rule.status_code == 201, rule.get_json()
    lead = create_lead(client, tenant, treatment_interest=["SECOND_OPINION"])
    run_events(app, lead["id"], clock.now())
    run_events(app, lead["id"], clock.now())  # the lead.updated the rule's change emitted
    assert read(client, tenant, lead["id"])["priority"] == "urgent"
    assert len(titled(app, lead["id"], URGENT_CALL)) == 1
    [step] = [s for s in steps_of(app, lead["id"]) if s.action_type == "set_priority"]
    assert step.status == "done" and step.result["from_priority"] == "normal"


def test_two_rules_reacting_to_each_others_priority_changes_stop_after_one(app, client, tenant):
    # Each would undo the other forever: a change a rule makes on a lead.updated sets off no rule.
    for have, want in (("high", "urgent"), ("urgent", "high")):
        made = make_rule(
            client,
            tenant,
            {
                "name": f"{have} becomes {want}",
                "trigger": "lead.updated",
                "conditions": [{"field": "lead.priority", "operator": "changed_to", "value": have}],
                "actions": [{"type": "set_priority", "priority": want}],
            },
        )
        assert made.status_code == 201, made.get_json()
    lead = lead_for(client, tenant)
    run_events(app, lead["id"], clock.now())
    assert put_lead(client, tenant, lead["id"], {"priority": "high"}).status_code == 200
    for _ in range(4):
        run_events(app, lead["id"], clock.now())
    assert processed(app, lead["id"])
    assert read(client, tenant, lead["id"])["priority"] == "urgent"
    timeline = client.get(f"/api/leads/{lead['id']}/activities", headers=tenant.headers()).get_json()
    changes = [(a["actor"], a["details"]) for a in timeline if a["type"] == "PRIORITY_CHANGE"]
    rule_id = changes[0][1]["by"].removeprefix("automation:rule:")
    person = f"user:{tenant.users['treatment_coordinator'].id}"
    assert changes == [  # newest first: the rule's change is the engine's, the person's theirs
        ("system", {"from": "high", "to": "urgent", "by": f"automation:rule:{rule_id}"}),
        (person, {"from": "normal", "to": "high", "by": person}),
    ]


def test_bad_priority_and_recurring_values_in_a_rule_are_refused_by_path(app, client, tenant):
    resp = make_rule(
        client,
        tenant,
        {
            "name": "Bad",
            "trigger": "lead.stage_changed",
            "conditions": [],
            "actions": [
                {"type": "set_priority", "priority": "critical"},
                {
                    "type": "recurring_follow_up",
                    "every_days": 0,
                    "times": 60,
                    "title": "Call",
                    "while_stage": "",
                },
            ],
        },
    )
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]["json"]["actions"]
    assert set(errors["0"]) == {"priority"}
    assert set(errors["1"]) == {"every_days", "times", "while_stage"}


# --- recurring follow-up --------------------------------------------------------------------------


def move(client, tenant, lead_id: int, stage: str, **extra) -> dict:
    body, coordinator = {"stage": stage, **extra}, tenant.headers("treatment_coordinator")
    resp = client.post(f"/api/leads/{lead_id}/stage", json=body, headers=coordinator)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def recurring_steps(app, lead_id: int):
    return [s for s in steps_of(app, lead_id) if s.action_type == "recurring_follow_up"]


def test_the_weekly_follow_up_repeats_every_seven_days_and_stops_when_the_lead_moves_on(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    moved = move(client, tenant, lead["id"], "pending_decision", hesitation_reason="cost")
    run_events(app, lead["id"], clock.now())
    entered = datetime.fromisoformat(moved["stage_entered_at"])
    [first] = recurring_steps(app, lead["id"])
    assert first.status == "scheduled"
    assert abs(first.run_at - (entered + timedelta(days=7))) < timedelta(seconds=1)
    assert titled(app, lead["id"], CHECK_IN) == []

    [job] = jobs(app, lead["id"], "automation.step")
    assert run_at(app, job, first.run_at) == "done"
    assert run_at(app, job, first.run_at) != "done"  # delivered twice: the occurrence is made once
    [one] = titled(app, lead["id"], CHECK_IN)
    done, second = recurring_steps(app, lead["id"])
    assert done.status == "done" and done.result["occurrence"] == 1
    assert second.status == "scheduled" and second.run_at == first.run_at + timedelta(days=7)

    assert run_due_steps(app, lead["id"], second.run_at) == 1
    one, two = titled(app, lead["id"], CHECK_IN)
    assert two.due_at - one.due_at == timedelta(days=7)
    third = recurring_steps(app, lead["id"])[-1]
    assert third.status == "scheduled" and third.action["occurrence"] == 3

    move(client, tenant, lead["id"], "treatment_accepted")
    run_events(app, lead["id"], clock.now())
    third = recurring_steps(app, lead["id"])[-1]
    assert third.status == "cancelled"
    assert third.result["reason"] == (
        "the lead left pending_decision for treatment_accepted: the recurring follow-up ends"
    )
    assert run_due_steps(app, lead["id"], entered + timedelta(days=60)) == 0
    assert len(titled(app, lead["id"], CHECK_IN)) == 2
    trail = client.get(f"/api/leads/{lead['id']}/automation", headers=tenant.headers()).get_json()
    assert trail["pending"] == []


def test_the_weekly_follow_up_stops_at_its_count(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    move(client, tenant, lead["id"], "pending_decision", hesitation_reason="timing")
    run_events(app, lead["id"], clock.now())
    later = clock.now()
    for week in range(1, 8):
        later = clock.now() + timedelta(days=7 * week, minutes=1)
        run_due_steps(app, lead["id"], later)
    assert len(titled(app, lead["id"], CHECK_IN)) == 4  # the seeded rule's `times`
    assert [s.status for s in recurring_steps(app, lead["id"])] == ["done"] * 4


# --- referral -------------------------------------------------------------------------------------


def test_a_dentist_referred_lead_gets_the_referral_task_and_a_web_lead_does_not(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    sources = source_ids(client, tenant)
    referred = create_lead(client, tenant, source_id=sources["DOCTOR_REFERRAL"], referring_provider_id=12)
    web = create_lead(client, tenant, source_id=sources["WEB_ORGANIC"])
    named = create_lead(client, tenant, source_id=sources["OTHER"], referring_provider_id=7)
    for lead in (referred, web, named):
        run_events(app, lead["id"], clock.now())
    [task] = titled(app, referred["id"], REFERRAL)
    assert task.type == "CALL" and task.priority == "HIGH"
    assert task.assigned_to_id == referred["assigned_to_id"]
    assert task.due_at - datetime.fromisoformat(referred["created_at"]) <= timedelta(hours=2, seconds=2)
    assert titled(app, web["id"], REFERRAL) == []
    assert len(titled(app, named["id"], REFERRAL)) == 1  # a referring provider named: a referral too


def test_the_rule_test_matches_an_urgent_sample_lead_and_times_the_first_weekly_follow_up(client, tenant):
    listed = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    rules = {r["default_key"]: r for r in listed}
    urgent = client.post(
        f"/api/follow-up-rules/{rules['urgent_priority']['id']}/test",
        json={"lead": {"priority": "urgent"}, "occurred_at": "2026-11-20T15:00:00Z"},
        headers=tenant.headers(),
    ).get_json()
    assert urgent["matched"] is True and urgent["conditions"][0]["seen"] == "urgent"
    normal = client.post(
        f"/api/follow-up-rules/{rules['urgent_priority']['id']}/test",
        json={"lead": {"priority": "normal"}},
        headers=tenant.headers(),
    ).get_json()
    assert normal["matched"] is False
    weekly = client.post(
        f"/api/follow-up-rules/{rules['pending_decision_check_in']['id']}/test",
        json={"lead": {}, "event": {"new_stage": "pending_decision"}, "occurred_at": "2026-11-20T15:00:00Z"},
        headers=tenant.headers(),
    ).get_json()
    [action] = weekly["actions"]
    assert action["type"] == "recurring_follow_up" and action["at"].startswith("2026-11-27")
