"""The contact policy: the pure decision (examples and properties) and automated messages through the API."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domains.lead_messages import policy
from app.domains.lead_messages.policy import MOVE, SEND, SKIP, MessageFacts, QuietHours, decide
from app.platform import clock
from tests.automation.outreachkit import (
    configure_clinic,
    email,
    enroll,
    job_of_step,
    lead_with,
    make_sequence,
    messages_to,
    run,
    sms,
    steps_of,
    zone_at_local_hour,
)

NIGHT = QuietHours("20:00", "08:00")


def facts(**overrides) -> dict:
    base = {
        "channel": "sms",
        "do_not_contact": False,
        "opted_out": False,
        "has_address": True,
        "at": datetime(2026, 3, 10, 17, 0, tzinfo=UTC),  # 12:00 in Chicago
        "timezone": "America/Chicago",
        "quiet_hours": NIGHT,
        "daily_cap": 2,
        "sent_today": 0,
    }
    return {**base, **overrides}


# --- the pure decision ----------------------------------------------------------------------------


def test_a_message_in_the_afternoon_is_sent():
    assert decide(MessageFacts(**facts())).verdict == SEND


def test_each_check_holds_back_with_its_reason_in_order():
    assert decide(MessageFacts(**facts(do_not_contact=True, opted_out=True))).reason == "do not contact"
    assert (
        decide(MessageFacts(**facts(opted_out=True, has_address=False))).reason == "the lead opted out of sms"
    )
    assert (
        decide(MessageFacts(**facts(channel="email", has_address=False))).reason
        == "the lead has no email address"
    )
    assert decide(MessageFacts(**facts(has_address=False))).reason == "the lead has no phone number"
    assert decide(MessageFacts(**facts(sent_today=2))) == policy.Decision(SKIP, "daily cap of 2 reached")


def test_a_message_at_22h_local_moves_to_08h_the_next_morning():
    at = datetime(2026, 3, 11, 4, 0, tzinfo=UTC)  # 22:00 on the 10th in Chicago (CDT, UTC-5)
    decision = decide(MessageFacts(**facts(at=at)))
    assert decision.verdict == MOVE and "quiet hours" in decision.reason
    assert decision.to.astimezone(ZoneInfo("America/Chicago")).replace(tzinfo=None) == datetime(
        2026, 3, 11, 8, 0
    )


def test_quiet_hours_come_before_the_cap_so_a_moved_message_is_counted_in_the_morning():
    at = datetime(2026, 3, 11, 4, 0, tzinfo=UTC)
    assert decide(MessageFacts(**facts(at=at, sent_today=5))).verdict == MOVE


def test_no_quiet_hours_setting_means_the_default_and_null_turns_them_off():
    assert policy.quiet_hours_of({}) == QuietHours("20:00", "08:00")
    assert policy.quiet_hours_of({"quiet_hours": None}) is None
    assert policy.daily_cap_of({}) == 2 and policy.daily_cap_of({"daily_message_cap": 5}) == 5


def test_the_leads_timezone_wins_when_valid():
    assert policy.timezone_for("Europe/Paris", "America/Chicago") == "Europe/Paris"
    assert policy.timezone_for(None, "America/Chicago") == "America/Chicago"
    assert policy.timezone_for("America", "America/Chicago") == "America/Chicago"


hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))
zones = st.sampled_from(
    ["America/New_York", "America/Chicago", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
)
moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(at=moments, tz=zones, start=hhmm, end=hhmm)
def test_a_moved_message_never_lands_inside_quiet_hours_and_always_later(at, tz, start, end):
    quiet = QuietHours(start, end) if start != end else None
    decision = decide(MessageFacts(**facts(at=at, timezone=tz, quiet_hours=quiet)))
    if decision.verdict == MOVE:
        assert decision.to > at
        assert decision.to - at <= timedelta(hours=25)  # at most a day (and a DST hour) later
        assert not policy.is_quiet(decision.to, tz, quiet)
    else:
        assert not policy.is_quiet(at, tz, quiet)


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 7 * 24 * 60), min_size=1, max_size=40),
    cap=st.integers(0, 4),
    tz=zones,
)
def test_the_cap_never_lets_more_than_n_through_in_a_local_day(offsets, cap, tz):
    start = datetime(2026, 6, 1, tzinfo=UTC)
    sent: Counter = Counter()
    for minutes in sorted(offsets):
        at = start + timedelta(minutes=minutes)
        day = policy.local_day(at, tz)
        decision = decide(
            MessageFacts(**facts(at=at, timezone=tz, quiet_hours=None, daily_cap=cap, sent_today=sent[day]))
        )
        if decision.verdict == SEND:
            sent[day] += 1
    assert all(count <= cap for count in sent.values())


# --- through the API ------------------------------------------------------------------------------


def test_quiet_hours_in_the_leads_timezone_move_an_sms_to_the_morning(app, client, db, tenant):
    configure_clinic(client, tenant)  # midday at the clinic
    night_zone = zone_at_local_hour(23)  # but 23:xx where the lead lives
    lead = lead_with(client, tenant, phone="(415) 555-2671", timezone=night_zone)
    sequence = make_sequence(client, tenant, [sms()])
    enroll(client, tenant, lead["id"], sequence["id"])
    [step] = steps_of(db, lead["id"])
    assert step.status == "scheduled" and messages_to(db, lead["id"]) == []
    local = step.run_at.astimezone(ZoneInfo(night_zone))
    assert (local.hour, local.minute) == (8, 0) and local.date() > clock.now().astimezone(
        ZoneInfo(night_zone)
    ).date()
    [move] = step.result["moved"]
    assert "quiet hours 20:00-08:00" in move["why"] and night_zone in move["why"]
    # At 08:00 the ledger job runs it, and the message goes.
    assert run(app, job_of_step(db, step), step.run_at) == "done"
    [step] = steps_of(db, lead["id"])
    [message] = messages_to(db, lead["id"])
    assert step.status == "done" and step.result["notification_id"] == message.id
    assert message.channel == "sms" and "Hi Jane, any questions?" in message.body
    assert message.context["origin"]["enrollment_id"] == step.enrollment_id


def test_quiet_hours_default_to_the_clinics_timezone_and_setting(app, client, db, tenant):
    configure_clinic(client, tenant, quiet_hours={"start": "11:00", "end": "13:30"})  # it is 12:xx there
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    enroll(client, tenant, lead["id"], make_sequence(client, tenant, [sms()])["id"])
    [step] = steps_of(db, lead["id"])
    clinic_zone = zone_at_local_hour(12)
    local = step.run_at.astimezone(ZoneInfo(clinic_zone))
    assert step.status == "scheduled" and (local.hour, local.minute) == (13, 30)
    assert clinic_zone in step.result["moved"][0]["why"]


def test_the_daily_cap_holds_back_the_third_message_of_a_day(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(client, tenant, [sms("one"), email(), sms("three"), sms("four", 1, "days")])
    enroll(client, tenant, lead["id"], sequence["id"])
    first, second, third, fourth = steps_of(db, lead["id"])
    assert [first.status, second.status] == ["done", "done"]
    assert third.status == "skipped" and third.result["reason"] == "daily cap of 2 reached"
    assert third.result["held_back_by"] == "contact policy"
    assert fourth.status == "scheduled"  # the sequence goes on: tomorrow is another day
    assert len(messages_to(db, lead["id"])) == 2
    assert run(app, job_of_step(db, fourth), fourth.run_at) == "done"
    assert steps_of(db, lead["id"])[3].status == "done" and len(messages_to(db, lead["id"])) == 3


def test_a_clinic_cap_setting_is_honoured(app, client, db, tenant):
    configure_clinic(client, tenant, daily_message_cap=1)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    enroll(client, tenant, lead["id"], make_sequence(client, tenant, [sms("one"), sms("two")])["id"])
    assert [s.result.get("reason") for s in steps_of(db, lead["id"])] == [None, "daily cap of 1 reached"]


def test_opt_outs_and_missing_addresses_skip_with_the_reason(app, client, db, tenant):
    configure_clinic(client, tenant)
    sequence = make_sequence(client, tenant, [email(), sms()])
    opted = lead_with(client, tenant, phone="(415) 555-2671", email_opt_out=True)
    enroll(client, tenant, opted["id"], sequence["id"])
    assert [(s.status, s.result.get("reason")) for s in steps_of(db, opted["id"])] == [
        ("skipped", "the lead opted out of email"),
        ("done", None),
    ]
    no_phone = create_lead_without_phone(client, tenant, sms_opt_out=False)
    enroll(client, tenant, no_phone["id"], sequence["id"])
    assert [(s.status, s.result.get("reason")) for s in steps_of(db, no_phone["id"])] == [
        ("done", None),
        ("skipped", "the lead has no phone number"),
    ]


def create_lead_without_phone(client, tenant, **fields):
    return lead_with(client, tenant, first_name="Ann", last_name="Lee", **fields)


def test_do_not_contact_skips_a_pending_message_and_refuses_enrollment(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(client, tenant, [sms(amount=1, unit="hours")])
    enroll(client, tenant, lead["id"], sequence["id"])
    resp = client.put(f"/api/leads/{lead['id']}", json={"do_not_contact": True}, headers=tenant.headers())
    assert resp.status_code == 200 and resp.get_json()["do_not_contact"] is True
    [step] = steps_of(db, lead["id"])
    # The job comes due before the opt-out event was processed: the policy still holds it back.
    assert run(app, job_of_step(db, step), step.run_at) == "done"
    [step] = steps_of(db, lead["id"])
    assert step.status == "skipped" and step.result["reason"] == "do not contact"
    assert messages_to(db, lead["id"]) == []
    other = make_sequence(client, tenant, [sms()], name="Other")
    refused = enroll(client, tenant, lead["id"], other["id"], expect=409)
    assert "do not contact" in refused["message"]


def test_lead_api_takes_and_shows_the_contact_policy_fields(client, tenant):
    lead = lead_with(client, tenant, sms_opt_out=True, timezone="Europe/Paris")
    assert (lead["do_not_contact"], lead["email_opt_out"], lead["sms_opt_out"]) == (False, False, True)
    assert lead["timezone"] == "Europe/Paris"
    for bad in ("Mars/Olympus", "America", ""):
        resp = client.put(f"/api/leads/{lead['id']}", json={"timezone": bad}, headers=tenant.headers())
        assert resp.status_code == 422 and "timezone" in resp.get_json()["errors"]["json"], bad
    resp = client.put(f"/api/leads/{lead['id']}", json={"timezone": None}, headers=tenant.headers())
    assert resp.status_code == 200 and resp.get_json()["timezone"] is None


def test_clinic_quiet_hours_and_cap_are_validated(client, tenant):
    for bad in ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, {"daily_message_cap": -1}):
        resp = client.put("/api/clinic", json={"settings": bad}, headers=tenant.headers())
        assert resp.status_code == 422, bad
