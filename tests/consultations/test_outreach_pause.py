"""A clinic's outreach paused over two days: a sequence's text due inside it is held and sent once
after; a reminder that could only go after its consultation is dropped; a resume lets messages go,
an early one at once; a task the automation makes inside a pause is due at its end."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.platform import clock
from tests.automation.outreachkit import ALWAYS_OPEN, enroll, lead_with, make_sequence, sms, steps_of
from tests.consultations.kit import (
    book,
    clinic_and_lead,
    events_done,
    providers,
    rule_steps,
    run_due,
    tasks_of,
    texts_to,
)
from tests.workers import thread_worker, wait_for


def pause(client, tenant, expect: int = 200, **body) -> dict:
    resp = client.post("/api/clinic/outreach-pause", json=body, headers=tenant.headers())
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def test_a_pause_over_two_days_holds_a_sequence_step_and_sends_it_once_after(
    app, client, db, tenant, monkeypatch
):
    with providers(app, monkeypatch) as (_, texts):
        lead = clinic_and_lead(client, tenant)
        until = clock.now() + timedelta(days=2)
        state = pause(client, tenant, until=until.isoformat())
        assert state["active"] is True and datetime.fromisoformat(state["until"]) == until
        sequence = make_sequence(client, tenant, [sms("Hi {{ first_name }}, any questions?")])
        with thread_worker(app):
            enroll(client, tenant, lead["id"], sequence["id"])
            wait_for(lambda: [s for s in steps_of(db, lead["id"]) if s.run_at == until], timeout=60)
            wait_for(lambda: events_done(db), timeout=60)
        [held] = steps_of(db, lead["id"])
        assert (
            held.status == "scheduled" and held.result["moved"][0]["why"] == "the clinic's outreach is paused"
        )
        assert texts_to(texts) == []
        run_due(app, db, until - timedelta(minutes=1))
        assert texts_to(texts) == []
        run_due(app, db, until)
        run_due(app, db, until + timedelta(hours=1))
        [text] = texts_to(texts)
        assert "any questions?" in text["Body"]
        assert [s.status for s in steps_of(db, lead["id"])] == ["done"]


def test_a_reminder_the_pause_would_hold_past_its_consultation_is_dropped(
    app, client, db, tenant, monkeypatch
):
    with providers(app, monkeypatch) as (_, texts):
        lead = clinic_and_lead(client, tenant)
        pause(client, tenant, until=(clock.now() + timedelta(days=10)).isoformat())
        starts_at = clock.now() + timedelta(days=3)
        with thread_worker(app):
            book(client, tenant, lead["id"], starts_at)
            wait_for(
                lambda: events_done(db) and rule_steps(db, lead["id"], "consultation_reminders"), timeout=60
            )
        run_due(app, db, starts_at - timedelta(minutes=1))
        assert texts_to(texts) == []
        reminders = rule_steps(db, lead["id"], "consultation_reminders")
        assert [s.status for s in reminders] == ["skipped", "skipped"]
        assert all("paused until" in s.result["reason"] for s in reminders)
        [confirmation] = rule_steps(db, lead["id"], "consultation_confirmation")
        assert confirmation.status == "scheduled"  # held to the pause's end, not lost


def test_the_pause_is_checked_and_resumed(client, tenant):
    bad = client.post(
        "/api/clinic/outreach-pause",
        json={"from": clock.now().isoformat(), "until": (clock.now() - timedelta(days=1)).isoformat()},
        headers=tenant.headers(),
    )
    assert bad.status_code == 422 and "until" in str(bad.get_json()["errors"])
    assert pause(client, tenant)["active"] is True  # open-ended
    front_desk = client.post("/api/clinic/outreach-pause", json={}, headers=tenant.headers("front_desk"))
    assert front_desk.status_code == 403
    resumed = client.delete("/api/clinic/outreach-pause", headers=tenant.headers())
    assert resumed.status_code == 200 and resumed.get_json() == {"from": None, "until": None, "active": False}


def test_a_resume_before_the_end_lets_the_held_text_go_at_once_and_once(app, client, db, tenant, monkeypatch):
    with providers(app, monkeypatch) as (_, texts):
        lead = clinic_and_lead(client, tenant)
        until = clock.now() + timedelta(days=2)
        pause(client, tenant, until=until.isoformat())
        sequence = make_sequence(client, tenant, [sms("Hi {{ first_name }}, any questions?")])
        with thread_worker(app):
            enroll(client, tenant, lead["id"], sequence["id"])
            wait_for(lambda: [s for s in steps_of(db, lead["id"]) if s.run_at == until], timeout=60)
            wait_for(lambda: events_done(db), timeout=60)
            assert texts_to(texts) == []
            resumed = client.delete("/api/clinic/outreach-pause", headers=tenant.headers())
            assert resumed.status_code == 200, resumed.get_json()
            wait_for(lambda: texts_to(texts), timeout=60)
            wait_for(lambda: events_done(db), timeout=60)
        [step] = steps_of(db, lead["id"])
        assert step.status == "done" and step.result["moved"][-1]["why"] == "the clinic's outreach resumed"
        run_due(app, db, until + timedelta(hours=1))  # the pause's old end: nothing goes again
        assert len(texts_to(texts)) == 1


def test_a_task_the_automation_makes_inside_a_pause_is_due_at_its_end(app, client, db, tenant):
    lead_now = clock.now()
    configure = client.put(
        "/api/clinic",
        json={"timezone": "UTC", "business_hours": ALWAYS_OPEN},
        headers=tenant.headers(),
    )
    assert configure.status_code == 200, configure.get_json()
    until = (lead_now + timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)  # open then
    pause(client, tenant, until=until.isoformat())
    with thread_worker(app):
        lead = lead_with(client, tenant)
        [task] = wait_for(
            lambda: [t for t in tasks_of(db, lead["id"]) if t.title == "Initial contact"], timeout=60
        )
    assert task.due_at == until  # not 5 minutes after capture: the clinic is closed until then
    # An open-ended pause has no end to move a task to: its due time stays (docs say so).
    pause(client, tenant)
    with thread_worker(app):
        other = lead_with(client, tenant)
        [task] = wait_for(
            lambda: [t for t in tasks_of(db, other["id"]) if t.title == "Initial contact"], timeout=60
        )
    assert task.due_at < clock.now() + timedelta(hours=1)
