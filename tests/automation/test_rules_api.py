"""The follow-up rules API: defaults, validation, permissions, versions, test, simulate, the why-trail."""

from datetime import timedelta

import sqlalchemy as sa

from app.domains.automation.defaults import DEFAULT_RULES
from app.domains.automation.models import AutomationStep
from app.domains.outbound.models import Notification
from app.platform import clock
from tests.automation.kit import add_coordinator, open_all_day, run_due_steps, run_events, steps_of
from tests.tasks.taskkit import lead_for, notifications_of

NOTE_NUDGE = {
    "name": "Nudge after a note",
    "trigger": "activity.logged",
    "conditions": [{"field": "event.activity_type", "operator": "equals", "value": "NOTE"}],
    "actions": [
        {
            "type": "notify",
            "lead_owner": True,
            "title": "v1 {{ first_name }}",
            "delay": {"amount": 2, "unit": "hours"},
        }
    ],
}


def post_rule(client, tenant, body, expect=201):
    resp = client.post("/api/follow-up-rules", json=body, headers=tenant.headers())
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def add_note(client, tenant, lead_id):
    resp = client.post(
        f"/api/leads/{lead_id}/activities", json={"type": "NOTE", "notes": "n"}, headers=tenant.headers()
    )
    assert resp.status_code == 201


def count(app, model) -> int:
    with app.extensions["followup.db"].unit_of_work() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_every_clinic_gets_the_default_rules_as_editable_rules(client, tenant, make_tenant):
    rules = client.get("/api/follow-up-rules", headers=tenant.headers("front_desk")).get_json()
    assert {r["default_key"] for r in rules} == {d["default_key"] for d in DEFAULT_RULES}
    assert [r["priority"] for r in rules] == sorted(r["priority"] for r in rules)
    other = make_tenant("Other")
    theirs = client.get("/api/follow-up-rules", headers=other.headers()).get_json()
    assert {r["id"] for r in theirs}.isdisjoint({r["id"] for r in rules})

    speed = next(r for r in rules if r["default_key"] == "speed_to_lead")
    changed = client.patch(
        f"/api/follow-up-rules/{speed['id']}", json={"active": False}, headers=tenant.headers()
    ).get_json()
    assert changed["version"] == 2 and changed["active"] is False
    active = client.get("/api/follow-up-rules/active", headers=tenant.headers()).get_json()
    # Off from the start: the rules a clinic turns on (the missed-call text back).
    seeded_on = [r for r in rules if r["active"]]
    assert {r["default_key"] for r in rules if not r["active"]} == {"missed_call_text_back"}
    assert speed["id"] not in {r["id"] for r in active} and len(active) == len(seeded_on) - 1


def test_a_deactivated_speed_to_lead_rule_makes_no_task(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    speed = next(
        r
        for r in client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
        if r["default_key"] == "speed_to_lead"
    )
    client.patch(f"/api/follow-up-rules/{speed['id']}", json={"active": False}, headers=tenant.headers())
    lead = lead_for(client, tenant)
    run_events(app, lead["id"], clock.now())
    assert steps_of(app, lead["id"]) == []


def test_unknown_field_operator_action_and_trigger_are_422_naming_them(client, tenant):
    bad_field = {**NOTE_NUDGE, "conditions": [{"field": "lead.shoe_size", "operator": "equals", "value": 1}]}
    errors = post_rule(client, tenant, bad_field, 422)["errors"]["json"]
    assert "lead.shoe_size" in errors["conditions"]["0"]["field"][0]

    bad_operator = {**NOTE_NUDGE, "conditions": [{"field": "lead.status", "operator": "roughly", "value": 1}]}
    assert (
        "roughly"
        in post_rule(client, tenant, bad_operator, 422)["errors"]["json"]["conditions"]["0"]["operator"][0]
    )

    bad_action = {**NOTE_NUDGE, "actions": [{"type": "launch_rocket"}]}
    assert (
        "launch_rocket"
        in post_rule(client, tenant, bad_action, 422)["errors"]["json"]["actions"]["0"]["type"][0]
    )

    bad_trigger = {**NOTE_NUDGE, "trigger": "lead.teleported"}
    assert "lead.teleported" in post_rule(client, tenant, bad_trigger, 422)["errors"]["json"]["trigger"][0]

    bad_merge = {**NOTE_NUDGE, "actions": [{"type": "notify", "lead_owner": True, "title": "Hi {{ ssn }}"}]}
    assert "ssn" in post_rule(client, tenant, bad_merge, 422)["errors"]["json"]["actions"]["0"]["title"][0]

    bad_unit = {
        **NOTE_NUDGE,
        "actions": [{**NOTE_NUDGE["actions"][0], "delay": {"amount": 1, "unit": "fortnights"}}],
    }
    assert (
        "fortnights" in post_rule(client, tenant, bad_unit, 422)["errors"]["json"]["actions"]["0"]["delay"][0]
    )

    names = [r["name"] for r in client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()]
    assert NOTE_NUDGE["name"] not in names  # nothing stored by a refused request


def test_permissions_and_other_clinics(client, tenant, make_tenant):
    post_rule(client, tenant, NOTE_NUDGE)
    rule = post_rule(client, tenant, {**NOTE_NUDGE, "name": "Second"})
    denied = client.post(
        "/api/follow-up-rules", json=NOTE_NUDGE, headers=tenant.headers("treatment_coordinator")
    )
    assert denied.status_code == 403
    assert (
        client.get(f"/api/follow-up-rules/{rule['id']}", headers=tenant.headers("front_desk")).status_code
        == 200
    )
    other = make_tenant("Other")
    assert client.get(f"/api/follow-up-rules/{rule['id']}", headers=other.headers()).status_code == 404
    assert (
        client.patch(
            f"/api/follow-up-rules/{rule['id']}", json={"priority": 1}, headers=other.headers()
        ).status_code
        == 404
    )
    assert client.delete(f"/api/follow-up-rules/{rule['id']}", headers=other.headers()).status_code == 404


def test_editing_makes_a_version_and_scheduled_steps_keep_theirs(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    rule = post_rule(client, tenant, NOTE_NUDGE)
    lead = lead_for(client, tenant)
    add_note(client, tenant, lead["id"])
    run_events(app, lead["id"], clock.now())

    etag = client.get(f"/api/follow-up-rules/{rule['id']}", headers=tenant.headers()).headers["ETag"]
    edit = {"actions": [{**NOTE_NUDGE["actions"][0], "title": "v2 {{ first_name }}"}]}
    stale = client.patch(
        f"/api/follow-up-rules/{rule['id']}", json=edit, headers={**tenant.headers(), "If-Match": '"stale"'}
    )
    assert stale.status_code == 412
    edited = client.patch(
        f"/api/follow-up-rules/{rule['id']}", json=edit, headers={**tenant.headers(), "If-Match": etag}
    ).get_json()
    assert edited["version"] == 2
    versions = client.get(f"/api/follow-up-rules/{rule['id']}/versions", headers=tenant.headers()).get_json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["definition"]["actions"][0]["title"] == "v1 {{ first_name }}"

    add_note(client, tenant, lead["id"])
    run_events(app, lead["id"], clock.now())
    run_due_steps(app, lead["id"], clock.now() + timedelta(hours=2, seconds=5))
    titles = sorted(n.title for n in notifications_of(app, lead["assigned_to_id"], "automation"))
    assert titles == ["v1 Jane", "v2 Jane"]  # the first step kept the version that scheduled it
    versions_used = sorted(s.rule_version for s in steps_of(app, lead["id"]) if s.rule_id == rule["id"])
    assert versions_used == [1, 2]


def test_stop_processing_ends_the_chain(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    first = post_rule(client, tenant, {**NOTE_NUDGE, "name": "First", "priority": 1, "stop_processing": True})
    second = post_rule(client, tenant, {**NOTE_NUDGE, "name": "Second", "priority": 2})
    lead = lead_for(client, tenant)
    add_note(client, tenant, lead["id"])
    run_events(app, lead["id"], clock.now())
    fired = {s.rule_id for s in steps_of(app, lead["id"])}
    assert first["id"] in fired and second["id"] not in fired


def test_deleting_a_rule_cancels_its_pending_steps(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    rule = post_rule(client, tenant, NOTE_NUDGE)
    lead = lead_for(client, tenant)
    add_note(client, tenant, lead["id"])
    run_events(app, lead["id"], clock.now())
    assert client.delete(f"/api/follow-up-rules/{rule['id']}", headers=tenant.headers()).status_code == 204
    [step] = [s for s in steps_of(app, lead["id"]) if s.rule_id == rule["id"]]
    assert step.status == "cancelled" and "deleted" in step.result["reason"]
    assert run_due_steps(app, lead["id"], clock.now() + timedelta(hours=3)) == 0
    assert client.get(f"/api/follow-up-rules/{rule['id']}", headers=tenant.headers()).status_code == 404


def test_the_test_endpoint_shows_each_condition_and_the_planned_actions_without_side_effects(
    app, client, tenant
):
    rules = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    breakup = next(r for r in rules if r["default_key"] == "three_failed_attempts")
    lead = lead_for(client, tenant)
    before = (count(app, AutomationStep), count(app, Notification))
    answer = client.post(
        f"/api/follow-up-rules/{breakup['id']}/test",
        json={
            "lead_id": lead["id"],
            "event": {"failed_attempts": 3},
        },
        headers=tenant.headers(),
    ).get_json()
    assert answer["matched"] is True, answer
    assert [(c["field"], c["seen"], c["result"]) for c in answer["conditions"]] == [
        ("event.failed_attempts", 3, True),
    ]
    assert [a["type"] for a in answer["actions"]] == ["send_email", "suggest", "notify"]

    missed = client.post(
        f"/api/follow-up-rules/{breakup['id']}/test",
        json={"lead_id": lead["id"], "event": {"failed_attempts": 2}},
        headers=tenant.headers(),
    ).get_json()
    assert missed["matched"] is False and missed["actions"] == []
    # The condition is shown with what it saw: two failed attempts are not yet the break-up.
    assert [(c["seen"], c["result"]) for c in missed["conditions"]] == [(2, False)]
    assert (count(app, AutomationStep), count(app, Notification)) == before


def test_the_test_endpoint_computes_due_times(client, tenant):
    client.put(
        "/api/clinic",
        json={
            "timezone": "America/New_York",
            "business_hours": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        },
        headers=tenant.headers(),
    )
    speed = next(
        r
        for r in client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
        if r["default_key"] == "speed_to_lead"
    )
    answer = client.post(
        f"/api/follow-up-rules/{speed['id']}/test",
        json={"lead": {"status": "NEW"}, "occurred_at": "2026-11-20T21:00:00-05:00"},
        headers=tenant.headers(),
    ).get_json()
    assert answer["actions"][0]["at"].startswith("2026-11-23T14:05:00")  # Monday 09:05 New York


def test_simulate_replays_the_last_days_without_side_effects(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    callback = next(
        r
        for r in client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
        if r["default_key"] == "callback_requested"
    )
    leads = [lead_for(client, tenant) for _ in range(3)]
    for lead, outcome in zip(leads, ("callback_requested", "callback_requested", "spoke"), strict=True):
        body = {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": outcome}
        client.post(f"/api/leads/{lead['id']}/activities", json=body, headers=tenant.headers())
    before = count(app, AutomationStep)
    answer = client.post(
        f"/api/follow-up-rules/{callback['id']}/simulate?days=30", headers=tenant.headers()
    ).get_json()
    assert answer["events_matched"] == 2 and answer["totals"] == {"create_task": 2}
    per_coordinator = {row["user_id"]: row["actions"] for row in answer["per_coordinator"]}
    assert sum(a["create_task"] for a in per_coordinator.values()) == 2
    assert sum(day["actions"]["create_task"] for day in answer["per_day"]) == 2
    assert count(app, AutomationStep) == before
    bad = client.post(f"/api/follow-up-rules/{callback['id']}/simulate?days=0", headers=tenant.headers())
    assert bad.status_code == 422 and "days" in bad.get_json()["errors"]["query"]


def test_the_why_trail_shows_past_and_pending_steps_with_their_reasons(app, client, tenant, make_tenant):
    open_all_day(client, tenant, clock.now())
    rule = post_rule(client, tenant, NOTE_NUDGE)
    lead = lead_for(client, tenant)
    add_note(client, tenant, lead["id"])
    run_events(app, lead["id"], clock.now())
    trail = client.get(f"/api/leads/{lead['id']}/automation", headers=tenant.headers("front_desk")).get_json()
    [pending] = trail["pending"]
    assert pending["rule"] == {"id": rule["id"], "version": 1, "name": "Nudge after a note"}
    assert pending["event"]["type"] == "activity.logged"
    assert pending["conditions"][0]["seen"] == "NOTE" and pending["conditions"][0]["result"] is True
    done = {s["action_type"]: s for s in trail["past"]}
    assert done["create_task"]["status"] == "done" and done["create_task"]["result"]["task_id"]
    assert done["create_task"]["rule"]["name"] == "Speed to lead: initial contact"
    other = make_tenant("Other")
    assert client.get(f"/api/leads/{lead['id']}/automation", headers=other.headers()).status_code == 404


def test_role_assignee_takes_turns_and_notifications_carry_their_origin(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    add_coordinator(client, tenant, "second.tc@example.com")
    rule = post_rule(
        client,
        tenant,
        {
            "name": "Coordinators share note follow-ups",
            "trigger": "activity.logged",
            "conditions": [{"field": "event.activity_type", "operator": "equals", "value": "NOTE"}],
            "actions": [
                {
                    "type": "create_task",
                    "title": "Read the note",
                    "task_type": "FOLLOW_UP",
                    "assignee": {"kind": "role", "role": "treatment_coordinator"},
                },
                {"type": "notify", "roles": ["clinic_admin"], "title": "Note on {{ first_name }}"},
            ],
        },
    )
    lead = lead_for(client, tenant)
    for _ in range(4):
        add_note(client, tenant, lead["id"])
    run_events(app, lead["id"], clock.now())
    from tests.automation.kit import tasks_of

    owners = [t.assigned_to_id for t in tasks_of(app, lead["id"]) if t.title == "Read the note"]
    assert len(owners) == 4 and len(set(owners)) == 2
    assert owners[0] != owners[1] and owners[:2] == owners[2:]  # strict turns
    told = notifications_of(app, tenant.users["clinic_admin"].id, "automation")
    assert len(told) == 4
    assert {n.context["origin"]["rule_id"] for n in told} == {rule["id"]}
    assert all(n.context["origin"]["conditions"][0]["seen"] == "NOTE" for n in told)


def test_an_assign_action_hands_the_lead_over_by_the_clinic_policy_or_to_the_named_user(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    next_tc = add_coordinator(client, tenant, "next.tc@example.com")
    by_policy = {
        **NOTE_NUDGE,
        "name": "Reassign on a note",
        "actions": [{"type": "assign", "policy": "clinic"}],
    }
    rule = post_rule(client, tenant, by_policy)
    lead = lead_for(client, tenant)
    owners = set()
    for _ in range(2):  # round robin: two notes, two turns, both coordinators
        add_note(client, tenant, lead["id"])
        run_events(app, lead["id"], clock.now())
        owners.add(
            client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["assigned_to_id"]
        )
    assert owners == {tenant.users["treatment_coordinator"].id, next_tc}
    done = [s for s in steps_of(app, lead["id"]) if s.rule_id == rule["id"]]
    assert [s.status for s in done] == ["done", "done"]

    client.delete(f"/api/follow-up-rules/{rule['id']}", headers=tenant.headers())
    to_user = [{"type": "assign", "user_id": tenant.users["clinic_admin"].id}]
    post_rule(client, tenant, {**NOTE_NUDGE, "name": "Admin takes noted leads", "actions": to_user})
    add_note(client, tenant, lead["id"])
    run_events(app, lead["id"], clock.now())
    shown = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert shown["assigned_to_id"] == tenant.users["clinic_admin"].id
    timeline = client.get(f"/api/leads/{lead['id']}/activities", headers=tenant.headers()).get_json()
    changes = [a for a in timeline if a["type"] == "ASSIGNMENT_CHANGE"]
    assert len(changes) >= 3
