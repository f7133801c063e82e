"""Sequences and enrollments through the API: CRUD and validation, steps in order, stops, tenancy."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from app.bootstrap import wiring_of
from app.domains.automation import steps
from app.domains.automation.models import AutomationRule, AutomationStep
from app.domains.leads.models import Lead
from app.domains.tasks.models import LeadTask
from app.platform import clock
from tests.automation.outreachkit import (
    call,
    configure_clinic,
    email,
    enroll,
    enrollment_row,
    enrollments,
    job_of_step,
    lead_with,
    make_sequence,
    messages_to,
    process_events,
    run,
    sms,
    steps_of,
)


def test_create_read_update_a_sequence(client, tenant):
    made = make_sequence(client, tenant, [sms(), call(2, "business_days")])
    assert made["active"] is True and [s["channel"] for s in made["steps"]] == ["sms", "call"]
    read = client.get(f"/api/sequences/{made['id']}", headers=tenant.headers("front_desk"))
    assert read.status_code == 200 and read.headers["ETag"]
    changed = client.put(
        f"/api/sequences/{made['id']}",
        json={"active": False, "name": "Renamed"},
        headers={**tenant.headers(), "If-Match": read.headers["ETag"]},
    )
    assert changed.status_code == 200 and changed.get_json()["name"] == "Renamed"
    stale = client.put(
        f"/api/sequences/{made['id']}",
        json={"active": True},
        headers={**tenant.headers(), "If-Match": read.headers["ETag"]},
    )
    assert stale.status_code == 412
    listed = client.get("/api/sequences", headers=tenant.headers("treatment_coordinator")).get_json()
    assert [s["name"] for s in listed] == ["Renamed"]
    make_sequence(client, tenant, [sms()], name="Renamed", expect=409)


def test_bad_steps_are_422_naming_the_field(client, tenant):
    cases = [
        ({"delay": {"amount": 1, "unit": "fortnights"}, "channel": "sms", "body": "x"}, ("delay", "unit")),
        ({"delay": {"amount": 1, "unit": "days"}, "channel": "fax", "body": "x"}, ("channel",)),
        ({"delay": {"amount": -1, "unit": "days"}, "channel": "sms", "body": "x"}, ("delay", "amount")),
        ({"delay": {"amount": 1, "unit": "days"}, "channel": "email", "body": "x"}, ("subject",)),
        ({"delay": {"amount": 1, "unit": "days"}, "channel": "sms", "body": "Hi {{ nickname }}"}, ("body",)),
        ({"channel": "sms", "body": "x"}, ("delay",)),
    ]
    for step, path in cases:
        resp = client.post("/api/sequences", json={"name": "Bad", "steps": [step]}, headers=tenant.headers())
        assert resp.status_code == 422, step
        errors = resp.get_json()["errors"]["json"]["steps"]["0"]
        for key in path:
            errors = errors[key]
        assert errors, (step, resp.get_json())
    empty = client.post("/api/sequences", json={"name": "Bad", "steps": []}, headers=tenant.headers())
    assert empty.status_code == 422 and "steps" in empty.get_json()["errors"]["json"]


def test_steps_run_in_order_and_the_enrollment_completes(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(client, tenant, [sms(), call(1, "days"), email(2, "days")])
    made = enroll(client, tenant, lead["id"], sequence["id"])
    assert (
        made["status"] == "active"
        and made["enrolled_by"] == f"user:{tenant.users['treatment_coordinator'].id}"
    )
    first, second = steps_of(db, lead["id"])
    assert first.status == "done" and second.status == "scheduled"
    [listed] = enrollments(client, tenant, lead["id"])
    assert listed["current_step"] == 1 and listed["next_step_at"] == second.run_at.isoformat()
    assert (second.run_at - clock.now()) > timedelta(hours=23)

    assert run(app, job_of_step(db, second), second.run_at) == "done"
    _, second, third = steps_of(db, lead["id"])
    assert second.status == "done" and third.status == "scheduled"
    assert third.run_at == second.run_at + timedelta(days=2)
    with db.unit_of_work() as session:
        task = session.get(LeadTask, second.result["task_id"])
        assert task.type == "CALL" and task.title == "Call Jane" and task.origin["sequence_step"] == 1
    assert run(app, job_of_step(db, second), second.run_at) != "done"  # a second delivery adds nothing

    assert run(app, job_of_step(db, third), third.run_at) == "done"
    assert [s.status for s in steps_of(db, lead["id"])] == ["done", "done", "done"]
    assert [m.channel for m in messages_to(db, lead["id"])] == ["sms", "email"]
    [done] = enrollments(client, tenant, lead["id"])
    assert (
        done["status"] == "completed" and done["end_reason"] == "completed" and done["next_step_at"] is None
    )


def test_a_call_step_is_due_inside_business_hours(app, client, db, tenant):
    configure_clinic(client, tenant)
    resp = client.put(
        "/api/clinic",
        json={"business_hours": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}},
        headers=tenant.headers(),
    )
    assert resp.status_code == 200
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(client, tenant, [call(3, "hours")])
    enroll(client, tenant, lead["id"], sequence["id"])
    [step] = steps_of(db, lead["id"])
    zone = ZoneInfo(_clinic_zone(client, tenant))
    saturday_night = _next_weekday_at(step.run_at, zone, weekday=5, hour=23)
    assert run(app, job_of_step(db, step), saturday_night) == "done"
    task_id = steps_of(db, lead["id"])[0].result["task_id"]
    with db.unit_of_work() as session:
        local = session.get(LeadTask, task_id).due_at.astimezone(zone)
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)  # Monday at opening


def _clinic_zone(client, tenant) -> str:
    return client.get("/api/clinic", headers=tenant.headers()).get_json()["timezone"]


def _next_weekday_at(after, zone: ZoneInfo, *, weekday: int, hour: int):
    local = after.astimezone(zone) + timedelta(days=1)
    while local.weekday() != weekday:
        local += timedelta(days=1)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


def test_enroll_twice_is_409_and_another_clinics_lead_or_sequence_is_404(client, tenant, make_tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(client, tenant, [sms(amount=1, unit="days")])
    enroll(client, tenant, lead["id"], sequence["id"])
    twice = enroll(client, tenant, lead["id"], sequence["id"], expect=409)
    assert "already enrolled" in twice["message"]
    other = make_tenant("Other Clinic")
    theirs = make_sequence(client, other, [sms()])
    enroll(client, tenant, lead["id"], theirs["id"], expect=404)
    enroll(client, other, lead["id"], theirs["id"], expect=404)
    assert client.get(f"/api/sequences/{sequence['id']}", headers=other.headers()).status_code == 404
    assert client.get(f"/api/leads/{lead['id']}/enrollments", headers=other.headers()).status_code == 404
    [mine] = enrollments(client, tenant, lead["id"])
    resp = client.post(f"/api/leads/{lead['id']}/enrollments/{mine['id']}/unenroll", headers=other.headers())
    assert resp.status_code == 404


def test_inactive_sequence_or_closed_lead_cannot_be_enrolled(client, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(client, tenant, [sms()])
    client.put(f"/api/sequences/{sequence['id']}", json={"active": False}, headers=tenant.headers())
    assert "inactive" in enroll(client, tenant, lead["id"], sequence["id"], expect=409)["message"]
    client.put(f"/api/sequences/{sequence['id']}", json={"active": True}, headers=tenant.headers())
    lost = client.post(
        f"/api/leads/{lead['id']}/lost", json={"reason": "NO_RESPONSE"}, headers=tenant.headers()
    )
    assert lost.status_code == 200
    assert "only open leads" in enroll(client, tenant, lead["id"], sequence["id"], expect=409)["message"]


def test_manual_unenroll_cancels_the_pending_step_and_allows_a_new_enrollment(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(client, tenant, [sms(amount=1, unit="days")])
    made = enroll(client, tenant, lead["id"], sequence["id"])
    url = f"/api/leads/{lead['id']}/enrollments/{made['id']}/unenroll"
    resp = client.post(url, headers=tenant.headers("treatment_coordinator"))
    assert resp.status_code == 200 and resp.get_json()["end_reason"] == "manual"
    [step] = steps_of(db, lead["id"])
    assert step.status == "cancelled" and step.result["reason"] == "unenrolled: manual"
    assert job_of_step(db, step).status == "cancelled"
    assert client.post(url, headers=tenant.headers()).status_code == 409
    enroll(client, tenant, lead["id"], sequence["id"])  # ended ones may repeat


def test_lost_cancels_every_pending_step_and_ends_the_enrollment(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    made = enroll(
        client, tenant, lead["id"], make_sequence(client, tenant, [sms(amount=1, unit="days")])["id"]
    )
    task_step = _pending_rule_step(app, lead["id"], {"type": "create_task", "title": "Check in"})
    client.post(f"/api/leads/{lead['id']}/lost", json={"reason": "NO_RESPONSE"}, headers=tenant.headers())
    process_events(app, db)
    assert {(s.id, s.status) for s in steps_of(db, lead["id"])} >= {(task_step, "cancelled")}
    assert all(s.status == "cancelled" for s in steps_of(db, lead["id"]))
    row = enrollment_row(db, made["id"])
    assert (row.status, row.end_reason) == ("unenrolled", "lost")


def test_converted_cancels_every_pending_step(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    made = enroll(
        client, tenant, lead["id"], make_sequence(client, tenant, [sms(amount=1, unit="days")])["id"]
    )
    _pending_rule_step(app, lead["id"], {"type": "create_task", "title": "Check in"})
    resp = client.post(f"/api/leads/{lead['id']}/convert", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    process_events(app, db)
    assert {s.status for s in steps_of(db, lead["id"])} == {"cancelled"}
    assert {s.result["reason"] for s in steps_of(db, lead["id"])} == {
        "unenrolled: converted",
        "the lead converted",
    }
    assert enrollment_row(db, made["id"]).end_reason == "converted"


def test_an_opt_out_through_the_api_unenrolls(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    made = enroll(
        client, tenant, lead["id"], make_sequence(client, tenant, [sms(amount=1, unit="days")])["id"]
    )
    client.put(f"/api/leads/{lead['id']}", json={"email_opt_out": True}, headers=tenant.headers())
    process_events(app, db)
    assert enrollment_row(db, made["id"]).end_reason == "opted_out"
    assert steps_of(db, lead["id"])[0].status == "cancelled"


def test_a_rule_enrolls_through_the_enroll_sequence_action(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(client, tenant, [sms(amount=1, unit="days")])
    step_id = _pending_rule_step(app, lead["id"], {"type": "enroll_sequence", "sequence_id": sequence["id"]})
    _run_step_now(app, step_id)
    [listed] = enrollments(client, tenant, lead["id"])
    first = steps_of(db, lead["id"])[0]
    assert listed["enrolled_by"] == f"rule:{first.rule_id}" and first.result["enrollment_id"] == listed["id"]
    again = _pending_rule_step(
        app, lead["id"], {"type": "enroll_sequence", "sequence_id": sequence["id"]}, "k2"
    )
    _run_step_now(app, again)
    enrolling = [s for s in steps_of(db, lead["id"]) if s.action_type == "enroll_sequence"]
    assert [s.status for s in enrolling] == ["done", "skipped"]
    assert "already enrolled" in enrolling[1].result["reason"]


def _pending_rule_step(app, lead_id: int, action: dict, key: str = "k1") -> int:
    """A scheduled step as the rules engine would record it, made by a rule holding just this action."""
    now = clock.now()
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        lead = session.get(Lead, lead_id)
        rule = AutomationRule(
            clinic_id=lead.clinic_id,
            name=f"test rule {key}",
            trigger="lead.updated",
            conditions=[],
            actions=[action],
            priority=100,
            stop_processing=False,
            active=True,
            version=1,
            created_at=now,
            updated_at=now,
            created_by="test",
            updated_by="test",
        )
        session.add(rule)
        session.flush()
        step = steps.record(
            session=session,
            lead=lead,
            planned=steps.PlannedStep(
                action=action,
                run_at=now + timedelta(hours=2),
                dedupe_key=f"test:{lead_id}:{key}",
                origin={"rule_id": rule.id, "rule_version": 1, "event_type": "test"},
            ),
            now=now,
        )
        steps.start(session=session, step=step, lead=lead, now=now)
        return step.id


def _run_step_now(app, step_id: int) -> None:
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        step = session.get(AutomationStep, step_id)
        lead, executors = session.get(Lead, step.lead_id), wiring_of(app).step_executors
        steps.execute(session=session, step=step, lead=lead, now=step.run_at, executors=executors)


def test_a_call_step_titled_with_the_patient_name_shows_front_desk_its_placeholder(app, client, db, tenant):
    """A call task's title is read by every reader of tasks: `{{ patient_first_name }}` is stored as
    `[patient_first_name]`, the contact's own name merged; the full title opens the description (PHI)."""
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671", patient_first_name="Wilhelmina")
    title = "Call {{ patient_first_name }} ({{ first_name }})"
    sequence = make_sequence(client, tenant, [{**call(title=title), "body": "Ask {{ first_name }} about it"}])
    enroll(client, tenant, lead["id"], sequence["id"])
    [step] = steps_of(db, lead["id"])
    assert step.status == "done", step.result
    tasks = f"/api/leads/{lead['id']}/tasks"
    desk = client.get(tasks, headers=tenant.headers("front_desk"))
    assert "Wilhelmina" not in desk.get_data(as_text=True)
    [task] = desk.get_json()
    assert task["title"] == "Call [patient_first_name] (Jane)" and "description" not in task
    [full] = client.get(tasks, headers=tenant.headers("treatment_coordinator")).get_json()
    assert full["description"] == "Call Wilhelmina (Jane)\n\nAsk Jane about it"
