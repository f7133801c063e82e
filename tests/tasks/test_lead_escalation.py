"""No contact 24 hours after capture → the clinic admins are told and the lead is flagged escalated,
once (issue 14 item 3). Attempts and automated messages are not contact.

Through the API with a real in-process worker (celery.contrib.testing's start_worker on the real
Redis) processing the lead's events and messages; the escalation job itself is run at its due time,
passed in (the clock is never slept through).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.business_hours.rules import BusinessCalendar
from app.domains.tasks import rules
from app.domains.tasks.escalation import LEAD_ESCALATION
from app.platform.events.consumers import PROCESS_KINDS
from app.platform.scheduling.models import ScheduledJob
from tests.automation.outreachkit import configure_clinic, email, enroll, make_sequence
from tests.leadkit import create_lead
from tests.tasks.taskkit import notifications_of, run_at
from tests.workers import thread_worker, wait_for

WEEKDAYS_9_TO_5 = {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
NEW_YORK = BusinessCalendar.from_settings("America/New_York", WEEKDAYS_9_TO_5, "US")


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of November 2026 in New York, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)


def test_24_hours_are_counted_on_open_days_from_the_next_opening():
    deadline = rules.no_contact_deadline
    assert deadline(NEW_YORK, ny(23, 10), 24) == ny(24, 10)  # Mon 10:00 → Tue 10:00
    assert deadline(NEW_YORK, ny(20, 16), 24) == ny(23, 16)  # Fri 16:00 → Mon 16:00 (weekend skipped)
    assert deadline(NEW_YORK, ny(20, 21), 24) == ny(24, 9)  # Fri 21:00: from Mon 09:00 → Tue 09:00
    assert deadline(NEW_YORK, ny(25, 10), 24) == ny(27, 10)  # Wed → Fri: Thanksgiving is closed
    assert deadline(NEW_YORK, ny(23, 10), 28) == ny(24, 14)  # one open day and 4 business hours
    never = BusinessCalendar.from_settings("UTC", {}, None)
    assert deadline(never, ny(23, 10), 24) == ny(24, 10)  # never open: plain hours


def escalation_job(app, lead_id: int) -> ScheduledJob:
    with app.extensions["followup.db"].unit_of_work() as session:
        return session.scalars(
            sa.select(ScheduledJob).where(
                ScheduledJob.kind == LEAD_ESCALATION, ScheduledJob.subject_id == lead_id
            )
        ).one()


def events_done(app) -> bool:
    with app.extensions["followup.db"].unit_of_work() as session:
        return not session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledJob)
            .where(ScheduledJob.kind.in_(PROCESS_KINDS), ScheduledJob.status.in_(("pending", "dispatched")))
        )


def log(client, tenant, lead_id: int, **body) -> None:
    resp = client.post(
        f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert resp.status_code == 201, resp.get_json()


def shown(client, tenant, lead_id: int) -> dict:
    resp = client.get(f"/api/leads/{lead_id}", headers=tenant.headers())
    assert resp.status_code == 200
    return resp.get_json()


def automated_emails(app, lead_id: int) -> list:
    from app.domains.activities.models import LeadActivity

    with app.extensions["followup.db"].unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(LeadActivity.id).where(
                    LeadActivity.lead_id == lead_id,
                    LeadActivity.actor == "system",
                    LeadActivity.type == "EMAIL",
                )
            )
        )


def test_a_voicemail_and_an_automated_email_do_not_stop_it_an_inbound_sms_does(app, client, tenant):
    configure_clinic(client, tenant)  # open all day: 24 hours are 24 hours
    admin = tenant.users["clinic_admin"]
    nurture = make_sequence(client, tenant, [email()])
    with thread_worker(app):
        ignored = create_lead(client, tenant, email="jane@example.com")
        answered = create_lead(client, tenant, email="john@example.com", first_name="John")
        wait_for(lambda: events_done(app), timeout=60)
        log(client, tenant, ignored["id"], type="PHONE_CALL", direction="OUTBOUND", outcome="voicemail")
        enroll(client, tenant, ignored["id"], nurture["id"])  # the sequence's email goes out at once
        wait_for(lambda: automated_emails(app, ignored["id"]), timeout=60)
        log(client, tenant, answered["id"], type="SMS", direction="INBOUND", notes="Yes, call me")
        wait_for(lambda: events_done(app), timeout=60)

    job = escalation_job(app, ignored["id"])
    captured = datetime.fromisoformat(ignored["created_at"])
    assert abs((job.due_at - (captured + timedelta(hours=24))).total_seconds()) < 60
    assert run_at(app, job, job.due_at) == "done"
    told = notifications_of(app, admin.id, "escalation")
    assert len(told) == 1 and told[0].title.startswith("No contact 24h after capture: Jane")
    assert notifications_of(app, admin.id, "escalation", channel="email")  # and by email, by default
    flagged = shown(client, tenant, ignored["id"])
    assert flagged["escalated"] is True and flagged["escalated_at"]
    assert run_at(app, job, job.due_at + timedelta(minutes=5)) != "done"  # delivered again: nothing more
    assert len(notifications_of(app, admin.id, "escalation")) == 1

    other = escalation_job(app, answered["id"])
    assert run_at(app, other, other.due_at) == "done"
    assert len(notifications_of(app, admin.id, "escalation")) == 1  # the answered lead: nobody told
    assert shown(client, tenant, answered["id"])["escalated"] is False


def test_a_lead_closed_before_its_time_is_not_escalated(app, client, tenant):
    configure_clinic(client, tenant)
    lead = create_lead(client, tenant)
    with thread_worker(app):
        wait_for(lambda: events_done(app), timeout=60)
    lost = client.post(f"/api/leads/{lead['id']}/lost", json={"reason": "OTHER"}, headers=tenant.headers())
    assert lost.status_code == 200, lost.get_json()
    job = escalation_job(app, lead["id"])
    assert run_at(app, job, job.due_at) == "done"
    assert notifications_of(app, tenant.users["clinic_admin"].id, "escalation") == []
    assert shown(client, tenant, lead["id"])["escalated"] is False


def test_the_clinic_sets_the_hours_and_a_bad_value_is_422(app, client, tenant):
    resp = client.put(
        "/api/clinic",
        json={
            "business_hours": WEEKDAYS_9_TO_5,
            "timezone": "America/New_York",
            "settings": {"no_contact_escalation_hours": 48},
        },
        headers=tenant.headers(),
    )
    assert resp.status_code == 200, resp.get_json()
    bad = client.put(
        "/api/clinic", json={"settings": {"no_contact_escalation_hours": 0}}, headers=tenant.headers()
    )
    assert bad.status_code == 422 and "no_contact_escalation_hours" in str(bad.get_json()["errors"])
    lead = create_lead(client, tenant)
    with thread_worker(app):
        wait_for(lambda: events_done(app), timeout=60)
    job = escalation_job(app, lead["id"])
    captured = datetime.fromisoformat(lead["created_at"])
    assert job.payload["hours"] == 48
    assert job.due_at == rules.no_contact_deadline(
        BusinessCalendar.from_settings("America/New_York", WEEKDAYS_9_TO_5, None), captured, 48
    )
