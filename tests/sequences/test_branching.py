"""Branching sequences through the API: a wait takes the path of what the family did (a click, an
open, a reply, a logged call) or of its timeout, once; the graph is checked when saved."""

from __future__ import annotations

from app.domains.engagement.events import EmailOpened, LinkClicked
from app.platform import clock
from tests.automation.outreachkit import (
    call,
    configure_clinic,
    email,
    enroll,
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
from tests.sequences.branchkit import call_tasks_of, emit_engagement, two_path_sequence, waits_of


def _steps_422(client, tenant, steps: list[dict]) -> dict:
    resp = client.post("/api/sequences", json={"name": "Bad graph", "steps": steps}, headers=tenant.headers())
    assert resp.status_code == 422, resp.get_json()
    return resp.get_json()["errors"]["json"]["steps"]


def test_a_graph_with_an_unreachable_step_or_a_loop_without_a_wait_is_422_naming_the_step(client, tenant):
    unreachable = _steps_422(
        client, tenant, [{**sms(), "key": "a", "next": "c"}, {**sms(), "key": "b"}, {**sms(), "key": "c"}]
    )
    assert list(unreachable) == ["1"] and "unreachable" in unreachable["1"]["key"][0]

    loop = _steps_422(
        client,
        tenant,
        [
            {**sms(), "key": "a"},
            {**sms(amount=1, unit="days"), "key": "b"},
            {**call(), "key": "c", "next": "b"},
        ],
    )
    assert "no wait" in loop["2"]["next"][0]

    unknown = _steps_422(
        client,
        tenant,
        [
            {
                **email(),
                "wait": {"for": ["replied"], "timeout": {"amount": 1, "unit": "days"}},
                "on": {"replied": "end", "timeout": "nowhere"},
            }
        ],
    )
    assert "nowhere" in unknown["0"]["on"]["timeout"][0]
    not_waited = _steps_422(
        client,
        tenant,
        [
            {
                **email(),
                "wait": {"for": ["replied"], "timeout": {"amount": 1, "unit": "days"}},
                "on": {"link_clicked": "end"},
            }
        ],
    )
    assert "does not wait for link_clicked" in not_waited["0"]["on"]["link_clicked"][0]
    assert "next" in _steps_422(client, tenant, [{**sms(), "on": {"timeout": "end"}}])["0"]["on"][0]
    bad_event = _steps_422(
        client, tenant, [{**sms(), "wait": {"for": ["faxed"], "timeout": {"amount": 1, "unit": "days"}}}]
    )
    assert bad_event["0"]["wait"]["for"]["0"]
    no_time = _steps_422(
        client, tenant, [{**sms(), "wait": {"for": ["replied"], "timeout": {"amount": 0, "unit": "days"}}}]
    )
    assert no_time["0"]["wait"]["timeout"]["amount"]

    # A loop through a wait is fine: each lap waits for the family or the timeout.
    make_sequence(
        client,
        tenant,
        [
            {**sms(), "key": "ask"},
            {
                **email(1, "days"),
                "key": "nudge",
                "wait": {"for": ["replied"], "timeout": {"amount": 3, "unit": "days"}},
                "on": {"replied": "end", "timeout": "ask"},
            },
        ],
        name="Loop through a wait",
    )


def test_a_click_takes_the_clicked_path_once_and_the_timeout_then_changes_nothing(app, client, db, tenant):
    configure_clinic(client, tenant)
    clicker = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = two_path_sequence(client, tenant)
    enroll(client, tenant, clicker["id"], sequence["id"])
    [wait] = waits_of(db, clicker["id"])
    assert wait.status == "scheduled" and (wait.run_at - clock.now()).days == 1  # two days, to the minute
    [sent] = messages_to(db, clicker["id"])

    # A mail proxy's open is not a person reading: nothing moves.
    emit_engagement(db, clicker["id"], EmailOpened, {"notification_id": sent.id, "machine": True})
    process_events(app, db)
    assert waits_of(db, clicker["id"])[0].status == "scheduled"

    for _ in range(2):  # the tracking reporting the click twice
        emit_engagement(db, clicker["id"], LinkClicked, {"notification_id": sent.id, "link": 0})
    process_events(app, db)
    [wait] = waits_of(db, clicker["id"])
    assert wait.status == "done" and wait.result["outcome"] == "link_clicked"
    assert job_of_step(db, wait).status == "cancelled"
    assert [m.channel for m in messages_to(db, clicker["id"])] == ["email", "sms"]
    run(app, job_of_step(db, wait), wait.run_at)  # the timeout's job, delivered anyway: nothing moves
    assert [m.channel for m in messages_to(db, clicker["id"])] == ["email", "sms"]
    assert call_tasks_of(db, clicker["id"]) == []

    [shown] = enrollments(client, tenant, clicker["id"])
    assert shown["status"] == "completed" and shown["position"] == "text"
    intro, text = shown["path"]
    assert intro["key"] == "intro" and intro["waiting"]["for"] == ["link_clicked"]
    assert text["via"]["outcome"] == "link_clicked" and text["via"]["after"] == "intro"
    trail = client.get(f"/api/leads/{clicker['id']}/automation", headers=tenant.headers("front_desk"))
    assert trail.status_code == 200
    [seen] = trail.get_json()["enrollments"]
    assert seen["path"][-1]["via"]["outcome"] == "link_clicked" and seen["position"] == "text"


def test_the_timeout_takes_its_path_and_a_click_after_it_changes_nothing(app, client, db, tenant):
    configure_clinic(client, tenant)
    quiet = lead_with(client, tenant, phone="(415) 555-2671")
    enroll(client, tenant, quiet["id"], two_path_sequence(client, tenant)["id"])
    [wait] = waits_of(db, quiet["id"])
    assert run(app, job_of_step(db, wait), wait.run_at) == "done"
    [wait] = waits_of(db, quiet["id"])
    assert wait.status == "done" and wait.result["outcome"] == "timeout"
    [task] = call_tasks_of(db, quiet["id"])
    assert task.type == "CALL"

    [sent] = messages_to(db, quiet["id"])
    emit_engagement(db, quiet["id"], LinkClicked, {"notification_id": sent.id, "link": 0})
    process_events(app, db)
    assert [m.channel for m in messages_to(db, quiet["id"])] == ["email"]
    assert len(call_tasks_of(db, quiet["id"])) == 1
    [shown] = enrollments(client, tenant, quiet["id"])
    assert shown["path"][-1]["key"] == "call" and shown["path"][-1]["via"]["outcome"] == "timeout"


def _reply(client, tenant, lead_id: int) -> None:
    resp = client.post(
        f"/api/leads/{lead_id}/activities",
        json={"type": "SMS", "direction": "INBOUND", "notes": "Yes, tell me more"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert resp.status_code == 201, resp.get_json()


def test_a_reply_while_waiting_for_one_takes_the_replied_path(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(
        client,
        tenant,
        [
            {
                **sms(),
                "key": "ask",
                "wait": {"for": ["replied", "email_opened"], "timeout": {"amount": 2, "unit": "days"}},
                "on": {"replied": "thanks", "timeout": "end"},
            },
            {**email(), "key": "nudge", "next": "end"},
            {**call(title="Call back {{ first_name }}"), "key": "thanks"},
        ],
    )
    enroll(client, tenant, lead["id"], sequence["id"])
    _reply(client, tenant, lead["id"])
    process_events(app, db)
    [wait] = waits_of(db, lead["id"])
    assert wait.result["outcome"] == "replied"
    assert len(call_tasks_of(db, lead["id"], "thanks")) == 1
    assert [m.channel for m in messages_to(db, lead["id"])] == ["sms"]  # not the nudge
    [shown] = enrollments(client, tenant, lead["id"])
    assert shown["status"] == "completed" and shown["end_reason"] == "completed"
    assert shown["path"][-1]["via"]["outcome"] == "replied"


def test_a_reply_to_a_sequence_without_a_wait_still_stops_it(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(client, tenant, [sms(), sms(amount=1, unit="days")])
    enroll(client, tenant, lead["id"], sequence["id"])
    _reply(client, tenant, lead["id"])
    process_events(app, db)
    [shown] = enrollments(client, tenant, lead["id"])
    assert (shown["status"], shown["end_reason"]) == ("unenrolled", "replied")
    assert [s.status for s in steps_of(db, lead["id"])] == ["done", "cancelled"]


def test_a_logged_call_with_a_named_outcome_branches_and_another_outcome_does_not(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(
        client,
        tenant,
        [
            {
                **sms(),
                "key": "ask",
                "wait": {
                    "for": ["call_logged"],
                    "call_outcomes": ["voicemail"],
                    "timeout": {"amount": 2, "unit": "days"},
                },
                "on": {"call_logged": "after_voicemail"},
            },
            {**sms("Sorry we missed you"), "key": "after_voicemail"},
        ],
    )
    enroll(client, tenant, lead["id"], sequence["id"])
    for outcome in ("no_answer", "voicemail"):
        resp = client.post(
            f"/api/leads/{lead['id']}/activities",
            json={"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": outcome},
            headers=tenant.headers("treatment_coordinator"),
        )
        assert resp.status_code == 201, resp.get_json()
        process_events(app, db)
        [wait] = waits_of(db, lead["id"])
        assert wait.status == ("scheduled" if outcome == "no_answer" else "done")
    assert [m.channel for m in messages_to(db, lead["id"])] == ["sms", "sms"]


def test_the_consoles_lead_page_shows_the_position_and_the_path_taken(app, client, db, tenant):
    from tests.console.test_console_pages import log_in

    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    enroll(client, tenant, lead["id"], two_path_sequence(client, tenant)["id"])
    [sent] = messages_to(db, lead["id"])
    with app.test_client() as coordinator:
        log_in(coordinator, tenant, "treatment_coordinator")
        waiting = coordinator.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
        emit_engagement(db, lead["id"], LinkClicked, {"notification_id": sent.id, "link": 0})
        process_events(app, db)
        branched = coordinator.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    said = waiting.split('<ul id="next-sequences">')[1].split("</ul>")[0]
    assert "At step “intro”, waiting until they click a link, at the latest " in said
    said = branched.split('<ul id="next-sequences">')[1].split("</ul>")[0]
    assert "After step “intro”, the family clicked a link on " in said and ": on to step “text”." in said
    assert "link_clicked" not in waiting + branched


def test_a_booking_while_waiting_for_one_branches_and_keeps_one_sequence(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(
        client,
        tenant,
        [
            {
                **sms(),
                "key": "invite",
                "wait": {"for": ["consultation_booked"], "timeout": {"amount": 5, "unit": "days"}},
                "on": {"consultation_booked": "prepare", "timeout": "end"},
            },
            {
                **email(),
                "key": "prepare",
                "variants": [
                    {"key": "A", "subject": "See you soon", "body": "Bring your x-rays."},
                    {"key": "B", "subject": "Your visit", "body": "Hi {{ first_name }}, what to expect."},
                ],
            },
        ],
    )
    enroll(client, tenant, lead["id"], sequence["id"])
    other = make_sequence(client, tenant, [sms(amount=1, unit="days")], name="Other")
    assert enroll(client, tenant, lead["id"], other["id"], expect=409)["code"] == "already_enrolled"
    resp = client.post(
        f"/api/leads/{lead['id']}/stage", json={"stage": "consultation_scheduled"}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    process_events(app, db)
    [wait] = waits_of(db, lead["id"])
    assert wait.result["outcome"] == "consultation_booked"
    prepared = [s for s in steps_of(db, lead["id"]) if s.action.get("key") == "prepare"]
    assert [s.action["variant"] for s in prepared] in (["A"], ["B"])  # the lead's variant of the step
    [shown] = enrollments(client, tenant, lead["id"])
    assert shown["path"][-1]["via"]["outcome"] == "consultation_booked"
    assert shown["end_reason"] != "consultation_booked"  # it took the path, not the goal's stop


def test_a_loop_through_a_wait_ends_after_the_most_steps_a_lead_may_take(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    looping = {
        **call(),
        "key": "again",
        "wait": {"for": ["replied"], "timeout": {"amount": 1, "unit": "minutes"}},
        "on": {"timeout": "again"},
    }
    enroll(client, tenant, lead["id"], make_sequence(client, tenant, [looping])["id"])
    for _ in range(60):
        pending = [w for w in waits_of(db, lead["id"]) if w.status == "scheduled"]
        if not pending:
            break
        run(app, job_of_step(db, pending[0]), pending[0].run_at)
    [shown] = enrollments(client, tenant, lead["id"])
    assert (shown["status"], shown["end_reason"]) == ("completed", "step_limit")
    assert len(shown["path"]) == 50 and len(call_tasks_of(db, lead["id"], "again")) == 50
