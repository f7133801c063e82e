"""No response after 3 attempts → one break-up email, counting attempts on every channel (issue 14 item 2).

Through the API with a real in-process worker (celery.contrib.testing's start_worker on the real
Redis): the events of each logged activity are processed by the worker, as in production.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.domains.activities import rules as activity_rules
from app.domains.activities.models import LeadActivity
from app.domains.automation import cadence
from app.domains.outbound.models import Notification
from app.platform import clock
from app.platform.app_db import get_db
from app.platform.events.consumers import PROCESS_KINDS
from app.platform.scheduling.runner import run_job
from tests.automation.kit import jobs, run_events
from tests.automation.outreachkit import configure_clinic, email, enroll, make_sequence
from tests.tasks.taskkit import lead_for, notifications_of
from tests.workers import thread_worker, wait_for

BREAK_UP_SUBJECT = "Should we close your file"


def lead_messages(app, lead_id: int) -> list[Notification]:
    with app.extensions["followup.db"].unit_of_work() as session:
        stmt = sa.select(Notification).where(
            Notification.lead_id == lead_id, Notification.recipient_user_id.is_(None)
        )
        return list(session.scalars(stmt.order_by(Notification.id)))


def break_ups(app, lead_id: int) -> list[Notification]:
    return [m for m in lead_messages(app, lead_id) if m.title.startswith(BREAK_UP_SUBJECT)]


def log(client, tenant, lead_id: int, **body) -> dict:
    resp = client.post(
        f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def unanswered_call(client, tenant, lead_id: int, outcome: str = "no_answer", days_ago: int = 0) -> dict:
    """A call nobody answered, `days_ago` (at most one failed attempt a business day counts)."""
    when = {"occurred_at": (clock.now() - timedelta(days=days_ago)).isoformat()} if days_ago else {}
    return log(client, tenant, lead_id, type="PHONE_CALL", direction="OUTBOUND", outcome=outcome, **when)


def a_lead(client, tenant) -> dict:
    configure_clinic(client, tenant)
    lead = lead_for(client, tenant)
    resp = client.put(
        f"/api/leads/{lead['id']}", json={"email": "jane@example.com"}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    return lead


def events_done(app) -> bool:
    from app.platform.scheduling.models import ScheduledJob

    with app.extensions["followup.db"].unit_of_work() as session:
        return not session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledJob)
            .where(ScheduledJob.kind.in_(PROCESS_KINDS), ScheduledJob.status.in_(("pending", "dispatched")))
        )


def attempts_counted(client, tenant, lead_id: int) -> int:
    """The failed attempts in a row counted now, as the lead's why-trail shows them."""
    trail = client.get(f"/api/leads/{lead_id}/automation", headers=tenant.headers())
    assert trail.status_code == 200, trail.get_json()
    return trail.get_json()["failed_attempts"]


def test_an_email_sent_and_two_unanswered_calls_send_one_break_up_email(app, client, tenant):
    lead = a_lead(client, tenant)
    with thread_worker(app):
        # An email four days ago (its reply window passed unanswered), a voicemail two days ago.
        sent = (clock.now() - timedelta(days=4)).isoformat()
        log(
            client, tenant, lead["id"], type="EMAIL", direction="OUTBOUND", notes="Brochure", occurred_at=sent
        )
        unanswered_call(client, tenant, lead["id"], "voicemail", days_ago=2)
        wait_for(lambda: events_done(app), timeout=60)
        assert break_ups(app, lead["id"]) == []  # two attempts: not yet
        unanswered_call(client, tenant, lead["id"], "no_answer")
        wait_for(lambda: break_ups(app, lead["id"]), timeout=60)
        unanswered_call(client, tenant, lead["id"], "no_answer")  # the same day: not a fourth
        wait_for(lambda: events_done(app), timeout=60)
    [sent] = break_ups(app, lead["id"])
    assert sent.channel == "email" and sent.to_address == "jane@example.com"
    shown = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert shown["suggested_action"] == "mark_lost"
    told = notifications_of(app, lead["assigned_to_id"], "automation")
    assert len(told) == 1 and told[0].title.startswith("Three failed attempts")


def test_an_automated_email_after_two_unanswered_calls_is_the_third_attempt(app, client, tenant):
    lead = a_lead(client, tenant)
    sequence = make_sequence(client, tenant, [email()])
    with thread_worker(app):
        unanswered_call(client, tenant, lead["id"], "no_answer", days_ago=4)
        unanswered_call(client, tenant, lead["id"], "wrong_number", days_ago=2)
        wait_for(lambda: events_done(app), timeout=60)
        enroll(client, tenant, lead["id"], sequence["id"])  # its email goes out at once
        wait_for(lambda: jobs(app, lead["id"], cadence.REPLY_WINDOW_KIND), timeout=60)
        wait_for(lambda: events_done(app), timeout=60)
        assert break_ups(app, lead["id"]) == []  # its reply window is open: not a failed attempt yet
        wait_for(lambda: all(m.sent_at for m in lead_messages(app, lead["id"])), timeout=60)
        # Two days on (the clinic is open all day), nobody answered: the third failed attempt.
        [window] = jobs(app, lead["id"], cadence.REPLY_WINDOW_KIND)
        later = clock.now() + timedelta(days=2)
        with app.app_context():
            assert run_job(db=get_db(), job_id=window.id, now=later) == "done"
        run_events(app, lead["id"], later)  # its event, processed then
        wait_for(lambda: break_ups(app, lead["id"]), timeout=60)
    sent = lead_messages(app, lead["id"])
    assert [m.title.startswith(BREAK_UP_SUBJECT) for m in sent] == [False, True]


def test_the_break_up_email_is_not_an_attempt_and_a_contact_resets_the_count(app, client, db, tenant):
    lead = a_lead(client, tenant)
    with thread_worker(app):
        for outcome, days_ago in (("no_answer", 4), ("voicemail", 2), ("no_answer", 0)):
            unanswered_call(client, tenant, lead["id"], outcome, days_ago)
        wait_for(lambda: break_ups(app, lead["id"]), timeout=60)
        wait_for(lambda: events_done(app), timeout=60)
    with db.unit_of_work() as session:
        [logged] = session.scalars(
            sa.select(LeadActivity).where(
                LeadActivity.lead_id == lead["id"],
                LeadActivity.type == "EMAIL",
                LeadActivity.actor == "system",
            )
        ).all()
        assert logged.details[activity_rules.BREAK_UP] is True
    # On the timeline the break-up email is the newest activity; still three attempts, not four.
    assert attempts_counted(client, tenant, lead["id"]) == 3
    log(client, tenant, lead["id"], type="SMS", direction="INBOUND", notes="Sorry, busy week")
    assert attempts_counted(client, tenant, lead["id"]) == 0


def test_a_rule_can_name_attempt_and_contact_and_break_up_must_be_a_flag(client, tenant):
    rule = {
        "name": "Tell me about contacts",
        "trigger": "activity.logged",
        "conditions": [{"field": "event.contact", "operator": "equals", "value": True}],
        "actions": [{"type": "notify", "lead_owner": True, "title": "Contact!"}],
    }
    assert client.post("/api/follow-up-rules", json=rule, headers=tenant.headers()).status_code == 201
    bad = {
        **rule,
        "name": "Bad flag",
        "actions": [{"type": "send_email", "subject": "s", "body": "b", "break_up": "yes"}],
    }
    resp = client.post("/api/follow-up-rules", json=bad, headers=tenant.headers())
    assert resp.status_code == 422 and "break_up" in str(resp.get_json()["errors"])
