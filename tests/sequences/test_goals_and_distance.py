"""Sequences stop on more goals (a booked consultation, a hard bounce) and keep their distance (one
active sequence per lead, the clinic's minimum gap between any two touches)."""

from __future__ import annotations

from datetime import timedelta

from app.domains.leads.models import Lead
from app.domains.outbound.events import MessageBounced
from app.platform import clock
from app.platform.events import service as events
from tests.automation.outreachkit import (
    call,
    configure_clinic,
    enroll,
    enrollment_row,
    job_of_step,
    lead_with,
    make_sequence,
    messages_to,
    process_events,
    run,
    sms,
    steps_of,
)

PHONE = "(415) 555-2671"


def test_a_booked_consultation_ends_the_enrollment(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    made = enroll(
        client, tenant, lead["id"], make_sequence(client, tenant, [sms(amount=1, unit="days")])["id"]
    )
    resp = client.post(
        f"/api/leads/{lead['id']}/stage", json={"stage": "consultation_scheduled"}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    process_events(app, db)
    row = enrollment_row(db, made["id"])
    assert (row.status, row.end_reason) == ("unenrolled", "consultation_booked")
    [step] = steps_of(db, lead["id"])
    assert step.status == "cancelled" and step.result["reason"] == "unenrolled: consultation_booked"
    assert job_of_step(db, step).status == "cancelled"


def test_a_hard_bounce_ends_the_enrollment_and_a_soft_one_does_not(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    made = enroll(
        client, tenant, lead["id"], make_sequence(client, tenant, [sms(amount=1, unit="days")])["id"]
    )
    for hard in (False, True):
        with app.app_context(), db.unit_of_work() as session:
            events.emit(
                session=session,
                event=MessageBounced(lead_id=lead["id"], channel="email", notification_id=None, hard=hard),
                subject=events.Subject(tenant.clinic.id, "lead", lead["id"]),
                now=clock.now(),
            )
        process_events(app, db)
        row = enrollment_row(db, made["id"])
        assert row.status == ("unenrolled" if hard else "active")
    assert enrollment_row(db, made["id"]).end_reason == "bounced"


def test_a_lead_is_in_one_active_sequence_unless_both_allow_more(client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    first = make_sequence(client, tenant, [sms(amount=1, unit="days")], name="First")
    second = make_sequence(client, tenant, [sms(amount=1, unit="days")], name="Second")
    assert first["allow_concurrent"] is False
    enroll(client, tenant, lead["id"], first["id"])
    refused = enroll(client, tenant, lead["id"], second["id"], expect=409)
    assert f"already in active sequence {first['id']}" in refused["message"]
    for sequence in (first, second):
        resp = client.put(
            f"/api/sequences/{sequence['id']}", json={"allow_concurrent": True}, headers=tenant.headers()
        )
        assert resp.status_code == 200 and resp.get_json()["allow_concurrent"] is True
    enroll(client, tenant, lead["id"], second["id"])
    bad = client.put(
        f"/api/sequences/{first['id']}", json={"allow_concurrent": "maybe"}, headers=tenant.headers()
    )
    assert bad.status_code == 422 and "allow_concurrent" in bad.get_json()["errors"]["json"]


def _log_call(client, tenant, lead_id):
    body = {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "no_answer", "duration_minutes": 1}
    resp = client.post(
        f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_the_minimum_gap_counts_a_persons_call_and_defers_the_next_steps(app, client, db, tenant):
    configure_clinic(client, tenant, min_touch_gap_minutes=120)
    lead = lead_with(client, tenant, phone=PHONE)
    logged = _log_call(client, tenant, lead["id"])
    with db.unit_of_work() as session:
        touched_at = clock.as_utc(session.get(Lead, lead["id"]).last_activity_at) or clock.now()
    enroll(
        client, tenant, lead["id"], make_sequence(client, tenant, [sms("first"), call(10, "minutes")])["id"]
    )
    [first] = steps_of(db, lead["id"])
    assert first.status == "scheduled" and not messages_to(db, lead["id"])
    assert "120 minutes between two touches" in first.result["moved"][0]["why"]
    gap_end = first.run_at
    assert timedelta(minutes=119) < gap_end - touched_at <= timedelta(minutes=120), logged
    assert run(app, job_of_step(db, first), gap_end) == "done"
    first, second = steps_of(db, lead["id"])
    assert first.status == "done" and len(messages_to(db, lead["id"])) == 1
    # The call step, due 10 minutes after the text, waits for the gap after the text.
    assert run(app, job_of_step(db, second), second.run_at) == "done"
    _, second = steps_of(db, lead["id"])
    assert second.status == "scheduled" and "task_id" not in second.result
    assert second.run_at >= gap_end + timedelta(minutes=120)
    assert run(app, job_of_step(db, second), second.run_at) == "done"
    assert steps_of(db, lead["id"])[1].result["task_id"]


def test_the_gap_setting_is_validated(client, tenant):
    resp = client.put(
        "/api/clinic", json={"settings": {"min_touch_gap_minutes": -5}}, headers=tenant.headers()
    )
    assert resp.status_code == 422 and "min_touch_gap_minutes" in str(resp.get_json()["errors"])
