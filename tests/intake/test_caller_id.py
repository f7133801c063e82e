"""Caller ID: the signed phone-system webhook matches the caller's lead by phone or creates one (source
"Phone"), logs an INBOUND call once per call id, and the call counts as contact (a real worker)."""

from __future__ import annotations

import time

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.intake.inbound.models import InboundMessage
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    enrollments,
    lead_with,
    make_sequence,
    process_events,
    sms,
)
from tests.leadkit import post_signed, scoped_secret
from tests.workers import thread_worker, wait_for

PHONE = "(415) 555-2671"
E164 = "+14155552671"


def post_call(client, clinic, call: dict, expect=200, **sign_kwargs):
    resp = post_signed(client, clinic, "/api/capture/call", call, "call", **sign_kwargs)
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def logged(db, clinic, call_id: str) -> tuple[int, int]:
    """The lead and activity a call was logged on (the answer does not say: see test_the_answer_...)."""
    with db.unit_of_work() as session:
        row = session.scalar(
            sa.select(InboundMessage).where(
                InboundMessage.clinic_id == clinic.id,
                InboundMessage.channel == "call",
                InboundMessage.message_id == call_id,
            )
        )
        return row.lead_id, row.activity_id


def calls_of(db, lead_id: int) -> list[LeadActivity]:
    with db.unit_of_work() as session:
        stmt = sa.select(LeadActivity).where(
            LeadActivity.lead_id == lead_id, LeadActivity.type == "PHONE_CALL"
        )
        return list(session.scalars(stmt.order_by(LeadActivity.id)))


def test_a_call_from_a_known_number_is_logged_on_its_lead_once(client, db, tenant):
    lead = lead_with(client, tenant, phone=PHONE)
    call = {"call_id": "CA1", "from": "415-555-2671", "duration_seconds": 61}
    assert post_call(client, tenant.clinic, call) == {"received": True}
    lead_id, activity_id = logged(db, tenant.clinic, "CA1")
    assert lead_id == lead["id"]
    # The phone system retries (signed anew: the same signature again would be a replay).
    assert post_call(client, tenant.clinic, call, timestamp=int(time.time()) + 1) == {"received": True}
    [call_logged] = calls_of(db, lead["id"])
    assert (call_logged.direction, call_logged.actor) == ("INBOUND", "phone_system")
    assert call_logged.duration_minutes == 2
    assert call_logged.id == activity_id


def test_an_unknown_caller_becomes_a_phone_lead_and_calls_again_on_it(client, db, tenant):
    first_call = {"call_id": "CA2", "from": "+1 415 555 0199", "caller_name": "Ann Lee"}
    post_call(client, tenant.clinic, first_call)
    lead_id, _ = logged(db, tenant.clinic, "CA2")
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    assert (lead["first_name"], lead["last_name"], lead["phone"]) == ("Ann", "Lee", "+14155550199")
    sources = client.get("/api/lead-sources", headers=tenant.headers()).get_json()
    assert {s["id"]: s["name"] for s in sources}[lead["source_id"]] == "Phone"
    post_call(client, tenant.clinic, {"call_id": "CA3", "from": "4155550199"})
    assert logged(db, tenant.clinic, "CA3")[0] == lead["id"]
    assert len(calls_of(db, lead["id"])) == 2
    post_call(client, tenant.clinic, {"call_id": "CA4", "from": "+1 415 555 0123"})
    nameless, _ = logged(db, tenant.clinic, "CA4")
    shown = client.get(f"/api/leads/{nameless}", headers=tenant.headers()).get_json()
    assert shown["first_name"] == "Unknown caller"


def test_a_call_counts_as_contact_and_stops_outreach_with_a_real_worker(app, client, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    sequence = make_sequence(client, tenant, [sms(), sms("Still there?", 1, "days")])
    enroll(client, tenant, lead["id"], sequence["id"])
    with thread_worker(app):
        post_call(client, tenant.clinic, {"call_id": "CA5", "from": E164})
        wait_for(lambda: enrollments(client, tenant, lead["id"])[0]["status"] == "unenrolled", timeout=60)
    assert enrollments(client, tenant, lead["id"])[0]["end_reason"] == "replied"


def test_unsigned_bad_and_other_clinics_calls(app, client, db, tenant, make_tenant):
    lead = lead_with(client, tenant, phone=PHONE)
    wrong = {"key_id": scoped_secret(app, tenant.clinic.id, "call")["key_id"], "secret": "wrong"}
    post_call(client, tenant.clinic, {"call_id": "CA6", "from": E164}, expect=401, key=wrong)
    body = post_call(client, tenant.clinic, {"call_id": "CA7", "from": "not a number"}, expect=422)
    assert "from" in str(body["errors"])
    assert "call_id" in str(post_call(client, tenant.clinic, {"from": E164}, expect=422)["errors"])
    # Signed by another clinic: never attached to this clinic's lead with the same number.
    other = make_tenant("Elsewhere")
    post_call(client, other.clinic, {"call_id": "CA6", "from": E164})
    assert logged(db, other.clinic, "CA6")[0] != lead["id"]
    assert calls_of(db, lead["id"]) == []


def test_a_missed_call_makes_a_callback_task_due_now_and_is_not_contact(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    sequence = make_sequence(client, tenant, [sms("Hello", 1, "days")])
    enroll(client, tenant, lead["id"], sequence["id"])
    post_call(client, tenant.clinic, {"call_id": "CA-missed", "from": E164, "duration_seconds": 0})
    post_call(client, tenant.clinic, {"call_id": "CA-missed-2", "from": E164, "answered": False})
    process_events(app, db)
    assert enrollments(client, tenant, lead["id"])[0]["status"] == "active"  # not a reply
    got = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert got["last_contacted_at"] is None
    tasks = client.get(f"/api/leads/{lead['id']}/tasks", headers=tenant.headers()).get_json()
    callbacks = [t for t in tasks if t["title"] == "Call back: missed call"]
    assert len(callbacks) == 2 and all(t["type"] == "CALL" for t in callbacks)
    # An answered call is contact: the sequence ends.
    post_call(client, tenant.clinic, {"call_id": "CA-spoke", "from": E164, "duration_seconds": 95})
    process_events(app, db)
    assert enrollments(client, tenant, lead["id"])[0]["end_reason"] == "replied"
