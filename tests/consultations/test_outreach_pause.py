"""A clinic's outreach paused over two days: a sequence's text due inside it is held and sent once
after; a reminder that could only go after its consultation is dropped; a resume lets messages go."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.platform import clock
from tests.automation.outreachkit import enroll, make_sequence, sms, steps_of
from tests.consultations.kit import (
    book,
    clinic_and_lead,
    events_done,
    providers,
    rule_steps,
    run_due,
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
