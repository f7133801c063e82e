"""Outreach limits of seed 004 on automated messages to one lead: a cap in all (skipped, the reason
on the why-trail, the sequence goes on) and a minimum interval (the message waits), set per clinic.
Time passes through the `now` each ledger job is run with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domains.lead_messages import policy
from app.domains.lead_messages.policy import MOVE, SEND, SKIP, MessageFacts, QuietHours, decide
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    enrollments,
    job_of_step,
    lead_with,
    make_sequence,
    messages_to,
    run,
    sms,
    steps_of,
)
from tests.lead_messages.kit import send

PHONE = "(415) 555-2671"


def test_a_message_over_the_leads_cap_is_skipped_with_the_reason_and_the_sequence_goes_on(
    app, client, db, tenant
):
    configure_clinic(client, tenant, max_automated_messages_per_lead=2)
    lead = lead_with(client, tenant, phone=PHONE)
    sequence = make_sequence(client, tenant, [sms("one"), sms("two", 1, "days"), sms("three", 1, "days")])
    enroll(client, tenant, lead["id"], sequence["id"])
    _, second = steps_of(db, lead["id"])
    assert run(app, job_of_step(db, second), second.run_at) == "done"
    third = steps_of(db, lead["id"])[2]
    assert run(app, job_of_step(db, third), third.run_at) == "done"
    third = steps_of(db, lead["id"])[2]
    assert third.status == "skipped" and third.result["held_back_by"] == "contact policy"
    assert third.result["reason"] == "the clinic's limit of 2 automated messages per lead reached"
    assert [m.body.split(": ", 1)[1] for m in messages_to(db, lead["id"])] == ["one", "two"]
    [enrollment] = enrollments(client, tenant, lead["id"])
    assert enrollment["status"] == "completed"  # held back, not retried: no error loop
    why = client.get(f"/api/leads/{lead['id']}/automation", headers=tenant.headers("front_desk")).get_json()
    assert "limit of 2 automated messages" in str(why)
    # A person may still write: the limits are on automated messages.
    send(client, tenant, lead["id"], channel="sms", body="Hi, it's Sam from the clinic")
    assert len(messages_to(db, lead["id"])) == 3


def test_a_message_sooner_than_the_minimum_interval_waits_for_it(app, client, db, tenant):
    configure_clinic(client, tenant, min_message_interval_minutes=60)
    lead = lead_with(client, tenant, phone=PHONE)
    enroll(client, tenant, lead["id"], make_sequence(client, tenant, [sms("one"), sms("two", 10)])["id"])
    _, second = steps_of(db, lead["id"])
    [sent] = messages_to(db, lead["id"])
    assert run(app, job_of_step(db, second), second.run_at) == "done"
    [_, second] = steps_of(db, lead["id"])
    assert second.status == "scheduled" and second.run_at == sent.created_at + timedelta(minutes=60)
    assert "at most one automated message every 60 minutes" in second.result["moved"][0]["why"]
    assert len(messages_to(db, lead["id"])) == 1
    assert run(app, job_of_step(db, second), second.run_at) == "done"
    assert steps_of(db, lead["id"])[1].status == "done" and len(messages_to(db, lead["id"])) == 2


def test_no_setting_means_no_limit_and_the_settings_are_validated(client, tenant):
    for bad, field in (
        ({"max_automated_messages_per_lead": -1}, "max_automated_messages_per_lead"),
        ({"min_message_interval_minutes": "soon"}, "min_message_interval_minutes"),
        ({"provider_rate_limits": {"sms": "lots"}}, "provider_rate_limits"),
        ({"provider_rate_limits": {"sms": "0/hour"}}, "provider_rate_limits"),
        ({"provider_rate_limits": {"sms": "5/year"}}, "provider_rate_limits"),
        ({"provider_rate_limits": {"sms": "5/hour;9/day"}}, "provider_rate_limits"),
        ({"provider_rate_limits": {"fax": "5/hour"}}, "provider_rate_limits"),
    ):
        resp = client.put("/api/clinic", json={"settings": bad}, headers=tenant.headers())
        assert resp.status_code == 422 and field in resp.get_json()["errors"]["json"]["settings"], bad
    good = {
        "max_automated_messages_per_lead": 5,
        "min_message_interval_minutes": 120,
        "provider_rate_limits": {"sms": "200/hour", "email": "1000 per 10 minutes"},
    }
    resp = client.put("/api/clinic", json={"settings": good}, headers=tenant.headers())
    assert (
        resp.status_code == 200 and resp.get_json()["settings"]["provider_rate_limits"]["sms"] == "200/hour"
    )


def test_the_policy_checks_the_limits_after_quiet_hours_and_the_cap_before_the_interval():
    noon = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)  # 12:00 in Chicago
    facts = {
        "channel": "sms",
        "do_not_contact": False,
        "opted_out": False,
        "has_address": True,
        "timezone": "America/Chicago",
        "quiet_hours": QuietHours("20:00", "08:00"),
        "daily_cap": 5,
        "sent_today": 0,
        "total_cap": 3,
        "min_interval": timedelta(hours=2),
    }
    last = noon - timedelta(minutes=30)
    assert decide(MessageFacts(**facts, at=noon, sent_total=3, last_sent_at=last)).verdict == SKIP
    at_night = noon + timedelta(hours=10)
    assert (
        decide(MessageFacts(**facts, at=at_night, sent_total=3, last_sent_at=last)).verdict == MOVE
    )  # quiet hours first
    waits = decide(MessageFacts(**facts, at=noon, sent_total=2, last_sent_at=last))
    assert (waits.verdict, waits.to) == (MOVE, last + timedelta(hours=2))
    assert (
        decide(MessageFacts(**facts, at=noon, sent_total=2, last_sent_at=noon - timedelta(hours=2))).verdict
        == SEND
    )
    assert (
        policy.total_cap_of({}) is None
        and policy.min_interval_of({"min_message_interval_minutes": 0}) is None
    )
