"""The follow-up promise kept (issue 74): after a failed attempt the clinic's cadence plans the next
one; a text or email just sent is not a failed attempt yet; engagement cancels a planned break-up.

Through the API with a real in-process worker on the real Redis (tests/workers.py), as production
processes the events; past attempts are logged with their own `occurred_at` (distinct days).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from app.domains.lead_messages.booking_link import booking_url
from app.platform import clock
from tests.automation.kit import jobs, run_events, tasks_of
from tests.automation.outreachkit import configure_clinic
from tests.automation.test_break_up import a_lead, events_done, log, unanswered_call
from tests.booking_page.kit import bookable_clinic, later, tomorrow_at
from tests.booking_page.test_page import open_page, post_booking
from tests.consultations.kit import book
from tests.workers import thread_worker, wait_for


def trail(client, tenant, lead_id: int) -> dict:
    resp = client.get(f"/api/leads/{lead_id}/automation", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def planned_touches(client, tenant, lead_id: int) -> list[dict]:
    return [s for s in trail(client, tenant, lead_id)["pending"] if s["action"].get("cadence")]


def break_up_steps(client, tenant, lead_id: int) -> list[dict]:
    answer = trail(client, tenant, lead_id)
    return [s for s in answer["pending"] + answer["past"] if s["action"].get("break_up")]


def test_an_initial_contact_ended_no_answer_plans_a_call_and_a_text_the_next_business_day(
    app, client, tenant
):
    lead = a_lead(client, tenant)  # open all day: a business day later is a day later
    with thread_worker(app):
        wait_for(lambda: events_done(app), timeout=60)
        [initial] = tasks_of(app, lead["id"])
        done = client.post(
            f"/api/leads/tasks/{initial.id}/complete",
            json={"outcome": "no_answer"},
            headers=tenant.headers("treatment_coordinator"),
        )
        assert done.status_code == 200, done.get_json()
        wait_for(lambda: len(planned_touches(client, tenant, lead["id"])) == 2, timeout=60)
    touches = planned_touches(client, tenant, lead["id"])
    assert sorted(s["action_type"] for s in touches) == ["create_task", "send_sms"]
    for step in touches:
        assert step["action"]["cadence"] == 2 and "attempt 2" in step["reason"]
        delay = datetime.fromisoformat(step["run_at"]) - clock.now()
        assert timedelta(hours=20) < delay <= timedelta(days=1)
    shown = trail(client, tenant, lead["id"])
    assert shown["failed_attempts"] == 1
    assert [(a["type"], a["counted"]) for a in shown["attempts"]] == [("PHONE_CALL", True)]


def test_a_voicemail_and_two_texts_just_sent_plan_no_break_up(app, client, tenant):
    lead = a_lead(client, tenant)
    with thread_worker(app):
        unanswered_call(client, tenant, lead["id"], "voicemail")
        for _ in range(2):
            log(client, tenant, lead["id"], type="SMS", direction="OUTBOUND", notes="Texted")
        wait_for(lambda: events_done(app), timeout=60)
    assert break_up_steps(client, tenant, lead["id"]) == []
    shown = trail(client, tenant, lead["id"])
    assert shown["suggested_action"] is None
    # The texts' reply window is still open: one failed attempt, the voicemail.
    assert shown["failed_attempts"] == 1
    assert [a["counted"] for a in shown["attempts"]] == [True, False, False]


def three_failed_days(client, tenant, lead_id: int) -> None:
    """Calls nobody answered on three different days (the last one now)."""
    for days_ago in (4, 2):
        when = (clock.now() - timedelta(days=days_ago)).isoformat()
        log(
            client,
            tenant,
            lead_id,
            type="PHONE_CALL",
            direction="OUTBOUND",
            outcome="no_answer",
            occurred_at=when,
        )
    unanswered_call(client, tenant, lead_id, "voicemail")


def held_break_up(app, client, tenant) -> dict:
    """A lead whose third failed attempt planned the break-up email, held now by quiet hours."""
    configure_clinic(client, tenant)
    resp = client.put(
        "/api/clinic",
        json={"settings": {"quiet_hours": {"start": "00:00", "end": "23:59"}}},
        headers=tenant.headers(),
    )
    assert resp.status_code == 200, resp.get_json()
    lead = a_lead(client, tenant)
    three_failed_days(client, tenant, lead["id"])
    wait_for(lambda: break_up_steps(client, tenant, lead["id"]), timeout=60)
    wait_for(lambda: events_done(app), timeout=60)
    [step] = break_up_steps(client, tenant, lead["id"])
    assert step["status"] == "scheduled" and step["result"]["moved"]  # held by quiet hours
    assert trail(client, tenant, lead["id"])["suggested_action"] == "mark_lost"
    return lead


def assert_ended_by_engagement(client, tenant, lead_id: int) -> None:
    [step] = break_up_steps(client, tenant, lead_id)
    assert step["status"] == "cancelled" and step["reason"].startswith("engagement")
    shown = trail(client, tenant, lead_id)
    assert shown["suggested_action"] is None
    [suggested] = [s for s in shown["past"] if s["action_type"] == "suggest"]
    assert suggested["result"]["withdrawn"]["why"].startswith("engagement")


def test_a_booking_by_staff_cancels_a_break_up_held_by_quiet_hours(app, client, tenant):
    with thread_worker(app):
        lead = held_break_up(app, client, tenant)
        book(client, tenant, lead["id"], clock.now() + timedelta(days=3))
        wait_for(lambda: break_up_steps(client, tenant, lead["id"])[0]["status"] == "cancelled", timeout=60)
        wait_for(lambda: events_done(app), timeout=60)
    assert_ended_by_engagement(client, tenant, lead["id"])


def test_a_reply_cancels_a_break_up_held_by_quiet_hours_and_withdraws_mark_lost(app, client, tenant):
    with thread_worker(app):
        lead = held_break_up(app, client, tenant)
        log(client, tenant, lead["id"], type="SMS", direction="INBOUND", notes="Still interested!")
        wait_for(lambda: break_up_steps(client, tenant, lead["id"])[0]["status"] == "cancelled", timeout=60)
        wait_for(lambda: events_done(app), timeout=60)
    assert_ended_by_engagement(client, tenant, lead["id"])


def test_the_coordinators_note_says_when_a_held_break_up_email_goes(app, client, tenant):
    with thread_worker(app):
        lead = held_break_up(app, client, tenant)
    [step] = break_up_steps(client, tenant, lead["id"])
    clinic = client.get("/api/clinic", headers=tenant.headers()).get_json()
    goes = datetime.fromisoformat(step["run_at"]).astimezone(ZoneInfo(clinic["timezone"]))
    inbox = client.get("/api/me/notifications", headers=tenant.headers("treatment_coordinator"))
    assert inbox.status_code == 200, inbox.get_json()
    [note] = [n for n in inbox.get_json() if n["title"].startswith("Three failed attempts")]
    # In the clinic's time, before it goes: "goes at 11:59 PM" (or "goes Tue 11:59 PM").
    assert f"{goes:%-I:%M %p} unless they reply or book first" in note["body"], note["body"]
    assert note["body"].startswith("The break-up email goes "), note["body"]
    assert "went" not in note["body"]


def test_a_booking_by_the_family_on_the_booking_page_cancels_a_held_break_up(app, client, tenant):
    with thread_worker(app):
        lead = held_break_up(app, client, tenant)
        bookable_clinic(client, tenant)
        path = urlsplit(booking_url(app.config["SETTINGS"], tenant.id, lead["id"], clock.now())).path
        visit = tomorrow_at("10:00") + timedelta(days=3)
        page = open_page(client, path, visit)
        with later(4):  # past the form's fastest-submit check
            booked = post_booking(client, path, page, visit)
        assert booked.status_code == 303, booked.get_data(as_text=True)[:600]
        wait_for(lambda: break_up_steps(client, tenant, lead["id"])[0]["status"] == "cancelled", timeout=60)
        wait_for(lambda: events_done(app), timeout=60)
    assert_ended_by_engagement(client, tenant, lead["id"])


def test_the_third_call_plans_the_break_up_when_its_event_runs_a_moment_early(app, client, tenant):
    """A worker whose clock reads a little behind the web's (within the early-run tolerance, as a
    loaded host's can) still counts the call its event is about: the break-up is planned."""
    lead = a_lead(client, tenant)
    three_failed_days(client, tenant, lead["id"])
    while pending := jobs(app, lead["id"], "events.process"):
        run_events(app, lead["id"], now=max(job.due_at for job in pending) - timedelta(seconds=0.5))
    [step] = break_up_steps(client, tenant, lead["id"])
    assert step["action_type"] == "send_email"
    assert trail(client, tenant, lead["id"])["suggested_action"] == "mark_lost"
