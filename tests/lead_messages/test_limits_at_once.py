"""The per-lead limits hold when two workers decide at once, and a message held overnight meets
what happened meanwhile (issue 45, item 5)."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from app.domains.lead_messages import at_send, to_lead
from app.platform import clock
from tests.automation.outreachkit import (
    configure_clinic,
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
from tests.leadkit import create_lead
from tests.requirements import need_postgres
from tests.workers import wait_for

PHONE = "(415) 555-2671"


def _waiting_on_a_lock(db) -> bool:
    with db.engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
        )


def test_two_messages_to_one_lead_decided_at_once_by_two_workers_leave_one_within_the_cap(
    app, client, db, tenant, monkeypatch, database_url
):
    need_postgres(database_url, "two workers deciding at once need a server that runs them at once")
    configure_clinic(client, tenant, daily_message_cap=1)
    lead = lead_with(client, tenant, phone=PHONE)
    for name in ("First", "Second"):
        body = {"name": name, "steps": [sms(name, 1, "hours")], "allow_concurrent": True}
        resp = client.post("/api/sequences", json=body, headers=tenant.headers())
        assert resp.status_code == 201, resp.get_json()
        enroll(client, tenant, lead["id"], resp.get_json()["id"])
    first, second = steps_of(db, lead["id"])
    due = max(first.run_at, second.run_at)

    # The first worker decides and queues its text, then holds its transaction open (as a slow
    # commit would) while the second worker decides.
    queued, release = threading.Event(), threading.Event()
    real_send = to_lead.send

    def send_then_wait(**kwargs):
        sent = real_send(**kwargs)
        if not queued.is_set():
            queued.set()
            release.wait(timeout=60)
        return sent

    monkeypatch.setattr(to_lead, "send", send_then_wait)
    outcomes: dict[str, str] = {}
    worker_a = threading.Thread(target=lambda: outcomes.update(a=run(app, job_of_step(db, first), due)))
    worker_b = threading.Thread(target=lambda: outcomes.update(b=run(app, job_of_step(db, second), due)))
    worker_a.start()
    assert queued.wait(timeout=60)
    worker_b.start()
    # The second either waits for the first (the lead's lock) or, without it, decides on its own.
    wait_for(lambda: not worker_b.is_alive() or _waiting_on_a_lock(db), timeout=60)
    release.set()
    worker_a.join(timeout=60)
    worker_b.join(timeout=60)

    assert outcomes == {"a": "done", "b": "done"}
    assert len(messages_to(db, lead["id"])) == 1  # the clinic's cap of one a day, not two
    [skipped] = [s for s in steps_of(db, lead["id"]) if s.status == "skipped"]
    assert skipped.result["reason"] == "daily cap of 1 reached"


def test_a_text_held_overnight_by_quiet_hours_does_not_go_once_the_coordinator_called(
    app, client, db, tenant
):
    # Quiet hours from 21:00 to 08:00 in a zone where it is now 23:xx: the text waits for the morning.
    configure_clinic(client, tenant, quiet_hours={"start": "21:00", "end": "08:00"})
    client.put("/api/clinic", json={"timezone": zone_at_local_hour(23)}, headers=tenant.headers())
    held = lead_with(client, tenant, phone=PHONE)
    untouched = create_lead(
        client,
        tenant,
        role="clinic_admin",
        first_name="John",
        phone="(415) 555-2672",
        email="john@example.com",
    )
    sequence = make_sequence(client, tenant, [sms("Good morning {{ first_name }}!")])
    for lead in (held, untouched):
        enroll(client, tenant, lead["id"], sequence["id"])
        [step] = steps_of(db, lead["id"])
        assert step.status == "scheduled" and step.run_at > clock.now()  # held to the morning
    morning = step.run_at

    resp = client.post(
        f"/api/leads/{held['id']}/activities",
        json={
            "type": "PHONE_CALL",
            "direction": "OUTBOUND",
            "outcome": "spoke",
        },
        headers=tenant.headers("treatment_coordinator"),
    )
    assert resp.status_code == 201, resp.get_json()

    for lead in (held, untouched):
        [step] = steps_of(db, lead["id"])
        assert run(app, job_of_step(db, step), morning) == "done"
    [step] = steps_of(db, held["id"])
    assert step.status == "skipped"
    assert step.result["reason"] == "the lead was contacted (a call) since it was held"
    assert messages_to(db, held["id"]) == []
    [step] = steps_of(db, untouched["id"])
    assert step.status == "done" and len(messages_to(db, untouched["id"])) == 1


def test_an_automated_message_waiting_to_go_is_cancelled_by_a_reply_meanwhile(app, client, db, tenant):
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    enroll(client, tenant, lead["id"], make_sequence(client, tenant, [sms("Any questions?")])["id"])
    [message] = messages_to(db, lead["id"])
    assert message.status == "pending"
    resp = client.post(
        f"/api/leads/{lead['id']}/activities",
        json={
            "type": "SMS",
            "direction": "INBOUND",
            "notes": "Yes, what does it cost?",
        },
        headers=tenant.headers("treatment_coordinator"),
    )
    assert resp.status_code == 201, resp.get_json()
    # The notifications worker asks the send-time guard as it claims the message.
    with db.unit_of_work() as session:
        hold = at_send.guard(
            session=session,
            lead_id=lead["id"],
            channel="sms",
            now=clock.now() + timedelta(seconds=2),
            notification_id=message.id,
        )
    assert hold is not None and hold.until is None
    assert hold.reason == "the lead got in touch (a text) since it was held"
