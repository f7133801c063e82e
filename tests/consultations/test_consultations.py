"""Consultations through the API with a real worker, a local SMTP server and a Twilio-like provider,
the ledger run at the times the test passes in: the confirmation at booking, the reminders at their
times (one each), a reschedule's old reminders never sent, a reply confirming, no-shows caught on
their own, the follow-up counted from the check-in."""

from __future__ import annotations

import re
import urllib.parse
from datetime import datetime, timedelta

import pytest

from app.domains.auth.models import Clinic
from app.domains.business_hours.rules import add_business_days, calendar_of
from app.platform import clock
from tests.automation.outreachkit import post_inbound
from tests.consultations.kit import (
    E164,
    act,
    book,
    clinic_and_lead,
    consultation,
    events_done,
    mails_with,
    providers,
    rule_steps,
    run_due,
    sms_to_lead,
    tasks_of,
    texts_to,
)
from tests.consultations.test_timers import clock_at
from tests.leadkit import create_lead
from tests.workers import thread_worker, wait_for

REMINDERS, CONFIRMATION = "consultation_reminders", "consultation_confirmation"


@pytest.fixture
def office(app, monkeypatch):
    with providers(app, monkeypatch) as both:
        yield both


def booked_with_worker(app, client, db, tenant, mailbox, starts_in: timedelta) -> tuple[dict, dict]:
    """A lead and a consultation booked `starts_in` from now, its events processed by a real worker
    (the confirmation email sent through SMTP)."""
    lead = clinic_and_lead(client, tenant)
    with thread_worker(app):
        booked = book(client, tenant, lead["id"], clock.now() + starts_in)
        wait_for(lambda: events_done(db) and rule_steps(db, lead["id"], REMINDERS), timeout=60)
        wait_for(lambda: mails_with(mailbox, "Your consultation at"), timeout=60)
    return lead, booked


def test_a_booking_confirms_at_once_and_reminds_at_its_times_once_each(app, client, db, tenant, office):
    mailbox, texts = office
    lead, booked = booked_with_worker(app, client, db, tenant, mailbox, timedelta(days=3))
    starts_at = clock.now() + timedelta(days=3)
    assert len(mails_with(mailbox, "Your consultation at")) == 1
    stage = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["pipeline_stage"]
    assert stage == "consultation_scheduled"
    first, second = rule_steps(db, lead["id"], REMINDERS)
    assert (first.status, second.status) == ("scheduled", "scheduled")
    start = booked_start(booked)
    assert first.run_at == start - timedelta(hours=48) and second.run_at == start - timedelta(hours=2)
    run_due(app, db, start - timedelta(hours=49))
    assert texts_to(texts) == []  # nothing before its time
    run_due(app, db, start - timedelta(hours=48))
    [reminder] = texts_to(texts)
    assert "Reply C to confirm" in reminder["Body"] and "Smile Orthodontics" in reminder["Body"]
    run_due(app, db, start - timedelta(hours=2))
    run_due(app, db, start - timedelta(minutes=1))  # run again later: nothing goes twice
    assert len(texts_to(texts)) == 2
    assert [s.status for s in rule_steps(db, lead["id"], REMINDERS)] == ["done", "done"]
    assert starts_at >= start  # the booking's own time, as given


def booked_start(booked: dict) -> datetime:
    return datetime.fromisoformat(booked["starts_at"])


def no_show_calls(db, lead_id: int) -> list:
    return [t for t in tasks_of(db, lead_id) if t.title == "Call about the missed consultation"]


def test_booked_for_tomorrow_the_48_hour_reminder_is_dropped_with_why_and_the_2_hour_one_goes(
    app, client, db, tenant, office
):
    mailbox, texts = office
    lead, booked = booked_with_worker(app, client, db, tenant, mailbox, timedelta(hours=26))
    start = booked_start(booked)
    early, late = rule_steps(db, lead["id"], REMINDERS)
    assert (
        early.status == "skipped" and "had passed when the consultation was booked" in early.result["reason"]
    )
    assert late.status == "scheduled"
    run_due(app, db, start - timedelta(hours=2))
    assert len(texts_to(texts)) == 1


def test_rescheduled_the_old_reminders_never_go_and_the_new_ones_do(app, client, db, tenant, office):
    mailbox, texts = office
    lead, booked = booked_with_worker(app, client, db, tenant, mailbox, timedelta(days=3))
    old_start = booked_start(booked)
    new_start = old_start + timedelta(days=4)  # its 48-hour reminder after the old time
    with thread_worker(app):
        resp = client.put(
            f"/api/consultations/{booked['id']}",
            json={"starts_at": new_start.isoformat()},
            headers=tenant.headers("front_desk"),
        )
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["version"] == 2
        wait_for(lambda: events_done(db) and len(rule_steps(db, lead["id"], REMINDERS)) == 4, timeout=60)
        wait_for(lambda: len(mails_with(mailbox, "Your consultation at")) == 2, timeout=60)
    old_first, old_second = (s for s in rule_steps(db, lead["id"], REMINDERS) if s.run_at < old_start)
    assert old_first.status == old_second.status == "cancelled"
    assert old_first.result["reason"] == "the consultation moved to a new time"
    run_due(app, db, old_start + timedelta(minutes=30))  # the old time passes: no text, no no-show
    assert texts_to(texts) == []
    assert consultation(db, booked["id"]).status == "scheduled"
    run_due(app, db, new_start - timedelta(hours=48))
    run_due(app, db, new_start - timedelta(hours=2))
    assert len(texts_to(texts)) == 2
    assert [n.status for n in sms_to_lead(db, lead["id"])] == ["sent", "sent"]


def test_a_cancel_ends_the_reminders_and_the_no_show_check(app, client, db, tenant, office):
    mailbox, texts = office
    lead, booked = booked_with_worker(app, client, db, tenant, mailbox, timedelta(days=3))
    start = booked_start(booked)
    with thread_worker(app):
        assert act(client, tenant, booked["id"], "cancel")["status"] == "cancelled"
        wait_for(lambda: events_done(db), timeout=60)
        wait_for(
            lambda: all(s.status == "cancelled" for s in rule_steps(db, lead["id"], REMINDERS)), timeout=60
        )
    run_due(app, db, start + timedelta(hours=1))
    assert texts_to(texts) == []
    assert consultation(db, booked["id"]).status == "cancelled"
    assert act(client, tenant, booked["id"], "cancel", expect=409)


def test_a_reply_c_confirms_and_r_asks_the_coordinator_to_rebook(app, client, db, tenant, office):
    mailbox, _ = office
    lead, booked = booked_with_worker(app, client, db, tenant, mailbox, timedelta(days=3))
    with thread_worker(app):
        reply = {"channel": "sms", "from": E164, "body": " c ", "message_id": "SM-confirm"}
        assert post_inbound(client, tenant.clinic, reply).status_code == 200
        wait_for(lambda: consultation(db, booked["id"]).confirmed_at is not None, timeout=60)
        again = {"channel": "sms", "from": E164, "body": "R", "message_id": "SM-rebook"}
        assert post_inbound(client, tenant.clinic, again).status_code == 200
        wait_for(
            lambda: [t for t in tasks_of(db, lead["id"]) if t.title.startswith("Reschedule")], timeout=60
        )
        wait_for(lambda: events_done(db), timeout=60)
    answered = client.get(f"/api/consultations/{booked['id']}", headers=tenant.headers()).get_json()
    assert answered["confirmed_at"] is not None and answered["reschedule_requested_at"] is not None
    # A reply is not a "stop messaging me": the reminders still wait for their times.
    assert [s.status for s in rule_steps(db, lead["id"], REMINDERS)] == ["scheduled", "scheduled"]


def test_no_check_in_by_start_plus_grace_is_a_no_show_with_an_urgent_call_due_in_15_minutes(
    app, client, db, tenant, office, monkeypatch
):
    mailbox, _ = office
    lead, booked = booked_with_worker(app, client, db, tenant, mailbox, timedelta(days=3))
    start = booked_start(booked)
    run_due(app, db, start + timedelta(minutes=14))
    assert consultation(db, booked["id"]).status == "scheduled"
    caught = start + timedelta(minutes=15)
    run_due(app, db, caught)
    missed = consultation(db, booked["id"])
    assert missed.status == "no_show" and missed.no_show_at == caught
    [call] = no_show_calls(db, lead["id"])
    assert call.priority == "URGENT" and call.due_at == caught + timedelta(minutes=15)
    timeline = client.get(f"/api/leads/{lead['id']}/activities", headers=tenant.headers()).get_json()
    assert "CONSULTATION_NO_SHOW" in [a["type"] for a in timeline]
    # They arrive late after all: recorded, and the call task is no longer wanted.
    arrived = caught + timedelta(minutes=5)
    with clock_at(monkeypatch, arrived):
        late = act(client, tenant, booked["id"], "check-in")
    assert late["status"] == "attended"
    run_due(app, db, arrived)  # the check-in's event, on the test's clock like the rest
    [call] = no_show_calls(db, lead["id"])
    assert call.status == "CANCELLED"


def test_a_check_in_stops_the_no_show_and_takes_back_nothing_that_went(
    app, client, db, tenant, office, monkeypatch
):
    mailbox, texts = office
    lead, booked = booked_with_worker(app, client, db, tenant, mailbox, timedelta(days=3))
    start = booked_start(booked)
    run_due(app, db, start - timedelta(hours=48))
    assert len(texts_to(texts)) == 1
    # The ledger runs on the test's clock: the 2-hour reminder goes too. The family is checked in once
    # the consultation has started (not before it: issue 76 item 7).
    run_due(app, db, start - timedelta(hours=2))
    went = texts_to(texts)
    assert len(went) == 2
    arrived = start + timedelta(minutes=5)
    with clock_at(monkeypatch, arrived):
        assert act(client, tenant, booked["id"], "check-in")["status"] == "attended"
    run_due(app, db, arrived)
    run_due(app, db, start + timedelta(hours=1))
    assert consultation(db, booked["id"]).status == "attended"
    assert [s.status for s in rule_steps(db, lead["id"], REMINDERS)] == ["done", "done"]
    assert texts_to(texts) == went  # what went before the visit stays on the timeline; no more go
    assert not no_show_calls(db, lead["id"])
    stage = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["pipeline_stage"]
    assert stage == "consultation_completed"


FOLLOW_UP_RULE, FOLLOW_UP_TITLE = "consultation_follow_up", "Follow up after the consultation"


def move_to(client, tenant, lead_id: int, stage: str, **fields) -> None:
    body = {"stage": stage, **fields}
    moved = client.post(f"/api/leads/{lead_id}/stage", json=body, headers=tenant.headers())
    assert moved.status_code == 200, moved.get_json()


def business_days_after(db, tenant, at: datetime, days: int) -> datetime:
    with db.unit_of_work() as session:
        return add_business_days(calendar_of(session.get(Clinic, tenant.id)), at, days)


def test_a_lead_moved_to_consultation_completed_by_hand_gets_its_3_day_follow_up_from_the_move(
    app, client, db, tenant, office
):
    """A clinic that records no consultations (no booking system connected) moves the lead by hand:
    the post-consultation call still comes 3 business days later, once."""
    lead = clinic_and_lead(client, tenant)
    with thread_worker(app):
        before = clock.now()
        move_to(client, tenant, lead["id"], "consultation_completed")
        after = clock.now()
        [step] = wait_for(lambda: rule_steps(db, lead["id"], FOLLOW_UP_RULE), timeout=60)
        wait_for(lambda: events_done(db), timeout=60)
    assert step.status == "scheduled"
    assert (
        business_days_after(db, tenant, before, 3) <= step.run_at <= business_days_after(db, tenant, after, 3)
    )
    run_due(app, db, step.run_at + timedelta(minutes=1))
    assert [t.title for t in tasks_of(db, lead["id"])].count(FOLLOW_UP_TITLE) == 1
    assert [s.status for s in rule_steps(db, lead["id"], FOLLOW_UP_RULE)] == ["done"]


def test_the_3_day_follow_up_counts_from_the_check_in_that_follows_a_stage_move(
    app, client, db, tenant, office
):
    mailbox, _ = office
    # A visit that started a minute ago (the move and the check-in wait for its start: issue 76 item 7).
    lead, booked = booked_with_worker(app, client, db, tenant, mailbox, -timedelta(minutes=1))
    with thread_worker(app):
        move_to(client, tenant, lead["id"], "consultation_completed")
        wait_for(lambda: rule_steps(db, lead["id"], FOLLOW_UP_RULE), timeout=60)
        arrived = booked_start(booked) + timedelta(seconds=20)
        act(client, tenant, booked["id"], "check-in", checked_in_at=arrived.isoformat())
        wait_for(lambda: len(rule_steps(db, lead["id"], FOLLOW_UP_RULE)) == 2, timeout=60)
        wait_for(lambda: events_done(db), timeout=60)
    checked_in = consultation(db, booked["id"]).checked_in_at
    assert abs((checked_in - arrived).total_seconds()) < 0.001
    # The stage move's follow-up gave way to the check-in's: one visit, one follow-up.
    steps = rule_steps(db, lead["id"], FOLLOW_UP_RULE)
    assert sorted(s.status for s in steps) == ["cancelled", "scheduled"]
    [pending] = [s for s in steps if s.status == "scheduled"]
    assert pending.run_at == business_days_after(db, tenant, checked_in, 3)


def test_checked_in_then_moved_on_by_hand_the_visit_has_exactly_one_follow_up(
    app, client, db, tenant, office
):
    mailbox, _ = office
    lead, booked = booked_with_worker(app, client, db, tenant, mailbox, -timedelta(minutes=1))  # started
    with thread_worker(app):
        act(client, tenant, booked["id"], "check-in")  # moves the lead to consultation_completed itself
        wait_for(lambda: rule_steps(db, lead["id"], FOLLOW_UP_RULE), timeout=60)
        move_to(client, tenant, lead["id"], "pending_decision", hesitation_reason="cost")
        wait_for(lambda: events_done(db), timeout=60)
    stage = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["pipeline_stage"]
    assert stage == "pending_decision"
    [step] = rule_steps(db, lead["id"], FOLLOW_UP_RULE)
    assert step.status == "scheduled"
    assert step.run_at == business_days_after(db, tenant, consultation(db, booked["id"]).checked_in_at, 3)


def test_a_family_with_no_email_is_confirmed_by_text_and_one_with_an_email_by_email_only(
    app, client, db, tenant, office
):
    """The confirmation goes by the family's channel: a phone-only family (a call, the booking page's
    short form) gets it as a text with the time and its link to move or cancel; a family with an
    email gets the email and no confirmation text."""
    mailbox, texts = office
    emailed = clinic_and_lead(client, tenant)  # phone and email
    phone_only = create_lead(client, tenant, first_name="Tom", last_name="Reyes", phone="(415) 555-0177")
    with thread_worker(app):
        book(client, tenant, phone_only["id"], clock.now() + timedelta(days=3))
        book(client, tenant, emailed["id"], clock.now() + timedelta(days=3))
        wait_for(lambda: events_done(db) and texts_to(texts, "+14155550177"), timeout=60)
        wait_for(lambda: mails_with(mailbox, "Your consultation at"), timeout=60)
    [confirmation] = texts_to(texts, "+14155550177")
    assert confirmation["Body"].startswith("Smile Orthodontics: Your consultation is booked for ")
    # Its own link to move or cancel: the engine's, filled in by a merge field, so sent as it is
    # (only the links a template writes are tracked) and opening the family's page.
    [link] = re.findall(r"https?://\S+", confirmation["Body"])
    assert "/book/c/" in link
    assert client.get(urllib.parse.urlsplit(link).path).status_code == 200
    assert len(mails_with(mailbox, "Your consultation at")) == 1
    assert texts_to(texts) == []  # the family with an email: no text before the reminders
