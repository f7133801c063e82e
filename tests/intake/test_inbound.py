"""The signed inbound webhook: matching, once per message id, STOP, the stops it triggers, a real worker."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.automation import steps
from app.domains.intake.inbound.models import InboundMessage
from app.domains.leads.models import Lead
from app.platform import clock
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    enrollment_row,
    enrollments,
    lead_with,
    make_sequence,
    post_inbound,
    process_events,
    sms,
    steps_of,
)
from tests.leadkit import count, create_lead, key_signed_headers, scoped_secret
from tests.workers import thread_worker, wait_for

PHONE = "(415) 555-2671"
E164 = "+14155552671"


def inbound_sms(body: str = "Yes, please call me", message_id: str = "SM1", sender: str = E164) -> dict:
    return {"channel": "sms", "from": sender, "body": body, "message_id": message_id}


def activities_of(db, lead_id: int) -> list[LeadActivity]:
    with db.unit_of_work() as session:
        stmt = sa.select(LeadActivity).where(LeadActivity.lead_id == lead_id).order_by(LeadActivity.id)
        return list(session.scalars(stmt))


def stored(db, clinic, message_id: str) -> InboundMessage | None:
    """The message as recorded (the answer says only {"received": true}), or None: not stored."""
    with db.unit_of_work() as session:
        return session.scalar(
            sa.select(InboundMessage).where(
                InboundMessage.clinic_id == clinic.id, InboundMessage.message_id == message_id
            )
        )


def inbound_activities(db, lead_id: int) -> list[LeadActivity]:
    return [a for a in activities_of(db, lead_id) if a.direction == "INBOUND"]


def test_an_inbound_sms_is_matched_by_phone_and_recorded_once(app, client, db, tenant):
    lead = lead_with(client, tenant, phone=PHONE)
    resp = post_inbound(client, tenant.clinic, inbound_sms(sender="415-555-2671"))  # national format
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"received": True}
    row = stored(db, tenant.clinic, "SM1")
    assert row.lead_id == lead["id"] and row.opted_out is False
    [activity] = inbound_activities(db, lead["id"])
    assert (activity.type, activity.notes, activity.actor) == (
        "SMS",
        "Yes, please call me",
        "inbound_webhook",
    )
    assert row.activity_id == activity.id
    # The provider delivers it again (freshly signed): the same answer, nothing new stored.
    retry_time = int(time.time()) + 1
    again = post_inbound(client, tenant.clinic, inbound_sms(sender="415-555-2671"), timestamp=retry_time)
    assert again.status_code == 200 and again.get_json() == {"received": True}
    assert len(inbound_activities(db, lead["id"])) == 1 and count(db, "inbound_messages") == 1


def test_an_inbound_email_is_matched_case_insensitively(app, client, db, tenant):
    lead = lead_with(client, tenant)
    message = {
        "channel": "email",
        "from": "Jane Doe <JANE@Example.com>",
        "body": "Thanks!",
        "message_id": "m-1",
    }
    assert post_inbound(client, tenant.clinic, message).get_json() == {"received": True}
    assert stored(db, tenant.clinic, "m-1").lead_id == lead["id"]
    [activity] = inbound_activities(db, lead["id"])
    assert activity.type == "EMAIL"


def test_an_unknown_sender_is_answered_the_same_and_nothing_is_stored(app, client, db, tenant, make_tenant):
    lead_with(client, tenant, phone=PHONE)
    other = make_tenant("Other Clinic")
    for clinic, message in [
        (tenant.clinic, inbound_sms(sender="+14155550000")),
        (tenant.clinic, inbound_sms(sender="SHORTCODE")),
        (other.clinic, inbound_sms()),  # our lead's number, but signed by another clinic
    ]:
        resp = post_inbound(client, clinic, message)
        # The same answer as a lead's message: the secret's holder cannot test who is a patient.
        assert resp.status_code == 200 and resp.get_json() == {"received": True}
    assert count(db, "inbound_messages") == 0
    with db.unit_of_work() as session:
        stmt = sa.select(sa.func.count()).select_from(LeadActivity).where(LeadActivity.direction == "INBOUND")
        assert session.scalar(stmt) == 0


def test_bad_signatures_are_401_and_nothing_is_stored(app, client, db, tenant):
    lead_with(client, tenant, phone=PHONE)
    body = json.dumps(inbound_sms()).encode()
    key = scoped_secret(app, tenant.clinic.id, "inbound")
    path = "/api/capture/inbound"
    good = key_signed_headers(key, path, body)
    missing = {"Content-Type": "application/json"}
    wrong = {**good, "X-Followup-Signature": "0" * 64}
    stale = key_signed_headers(key, path, body, timestamp=int(time.time()) - 600)
    other_secret = key_signed_headers({**key, "secret": "not-the-secret"}, path, body)
    unknown_key = key_signed_headers({**key, "key_id": "fsk_0000000000000000"}, path, body)
    for headers in (missing, wrong, stale, other_secret, unknown_key):
        resp = client.post("/api/capture/inbound", data=body, headers=headers)
        assert resp.status_code == 401, headers
    assert client.post("/api/capture/inbound", data=body, headers=good).status_code == 200
    replay = client.post("/api/capture/inbound", data=body, headers=good)
    assert replay.status_code == 401
    assert count(db, "inbound_messages") == 1


def test_bad_bodies_are_422_naming_the_field(client, tenant):
    for message, field in [
        ({**inbound_sms(), "channel": "fax"}, "channel"),
        ({k: v for k, v in inbound_sms().items() if k != "message_id"}, "message_id"),
        ({k: v for k, v in inbound_sms().items() if k != "from"}, "from"),
        ({**inbound_sms(), "received_at": "yesterday"}, "received_at"),
    ]:
        resp = post_inbound(client, tenant.clinic, message)
        assert resp.status_code == 422 and field in resp.get_json()["errors"]["json"], message


def test_an_inbound_sms_after_two_failed_calls_unenrolls_and_cancels_pending_outreach(
    app, client, db, tenant
):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    for _ in range(2):
        resp = client.post(
            f"/api/leads/{lead['id']}/activities",
            json={"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "no_answer"},
            headers=tenant.headers("treatment_coordinator"),
        )
        assert resp.status_code == 201, resp.get_json()
    made = enroll(
        client, tenant, lead["id"], make_sequence(client, tenant, [sms(amount=2, unit="days")])["id"]
    )
    email_step = _pending_step(app, lead["id"], {"type": "send_email", "subject": "Hello", "body": "Hi"}, "e")
    task_step = _pending_step(app, lead["id"], {"type": "create_task", "title": "Call back"}, "t")
    process_events(app, db)  # the calls' events: nothing to stop

    assert post_inbound(client, tenant.clinic, inbound_sms()).status_code == 200
    assert stored(db, tenant.clinic, "SM1").lead_id == lead["id"]
    process_events(app, db)
    row = enrollment_row(db, made["id"])
    assert (row.status, row.end_reason) == ("unenrolled", "replied")
    by_id = {s.id: s for s in steps_of(db, lead["id"])}
    sequence_step = next(s for s in by_id.values() if s.action_type == "sequence_step")
    assert sequence_step.status == "cancelled" and sequence_step.result["reason"] == "unenrolled: replied"
    assert (
        by_id[email_step].status == "cancelled" and by_id[email_step].result["reason"] == "the lead replied"
    )
    assert by_id[task_step].status == "scheduled"  # a coordinator's task is not outreach: it stays


def test_stop_opts_out_of_sms_and_unenrolls(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    made = enroll(
        client, tenant, lead["id"], make_sequence(client, tenant, [sms(amount=1, unit="days")])["id"]
    )
    post_inbound(client, tenant.clinic, inbound_sms(body="  Stop ", message_id="SM-stop"))
    assert stored(db, tenant.clinic, "SM-stop").opted_out is True
    got = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert got["sms_opt_out"] is True and got["email_opt_out"] is False
    process_events(app, db)
    row = enrollment_row(db, made["id"])
    assert (row.status, row.end_reason) == ("unenrolled", "opted_out")
    post_inbound(client, tenant.clinic, inbound_sms(body="quit", message_id="SM-2"))
    assert stored(db, tenant.clinic, "SM-2").opted_out is True
    # Not a STOP: words around it make it an ordinary reply.
    post_inbound(client, tenant.clinic, inbound_sms(body="don't stop", message_id="SM-3"))
    assert stored(db, tenant.clinic, "SM-3").opted_out is False


def test_end_to_end_with_a_real_worker_a_reply_stops_the_sequence(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    sequence = make_sequence(client, tenant, [sms(), sms("Still there?", 1, "days")])
    made = enroll(client, tenant, lead["id"], sequence["id"])
    with thread_worker(app):
        assert post_inbound(client, tenant.clinic, inbound_sms()).status_code == 200
        wait_for(lambda: enrollments(client, tenant, lead["id"])[0]["status"] == "unenrolled", timeout=60)
    [listed] = enrollments(client, tenant, lead["id"])
    assert listed["id"] == made["id"] and listed["end_reason"] == "replied" and listed["next_step_at"] is None
    first, second = steps_of(db, lead["id"])
    assert first.status == "done" and second.status == "cancelled"


def _pending_step(app, lead_id: int, action: dict, key: str) -> int:
    now = clock.now()
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        lead = session.get(Lead, lead_id)
        step = steps.record(
            session=session,
            lead=lead,
            planned=steps.PlannedStep(
                action=action,
                run_at=now + timedelta(hours=3),
                dedupe_key=f"test:{lead_id}:{key}",
                origin={"event_type": "test"},
            ),
            now=now,
        )
        steps.start(session=session, step=step, lead=lead, now=now)
        return step.id


def test_a_stop_opts_out_every_lead_of_the_clinic_with_that_number(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    sibling = create_lead(
        client, tenant, role="clinic_admin", phone=PHONE, first_name="Sam", email="s@example.com"
    )
    assert (
        post_inbound(client, tenant.clinic, inbound_sms(body="STOP", message_id="SM-all")).status_code == 200
    )
    assert stored(db, tenant.clinic, "SM-all").opted_out is True
    for each in (lead, sibling):
        assert (
            client.get(f"/api/leads/{each['id']}", headers=tenant.headers()).get_json()["sms_opt_out"] is True
        )
