"""A use case's transactional messages go as one job in the transactional lane: the escalation emails
of a batch of SLA breaches (one unit of work for up to 50 timers) are one `notification.deliver_together`
job, each email sent once by a real worker to a local SMTP relay; a transient failure among them is
retried in the same lane; a message queued alone keeps a job of its own."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa

from app.domains.outbound import outgoing
from app.domains.outbound.models import Notification
from app.platform import clock
from app.platform.app_db import get_db
from app.platform.scheduling import runner
from app.platform.scheduling.models import ScheduledJob
from tests.automation.kit import capture_at, open_all_day, run_events
from tests.outbound.test_batch_delivery import Statements
from tests.reliability.conftest import sweeping
from tests.workers import thread_worker, wait_for

LEADS = 5


def _jobs(db, *kinds: str) -> list[ScheduledJob]:
    with db.unit_of_work() as session:
        return list(session.scalars(sa.select(ScheduledJob).where(ScheduledJob.kind.in_(kinds))))


def _emails(db, kind: str) -> list[Notification]:
    with db.unit_of_work() as session:
        stmt = sa.select(Notification).where(Notification.kind == kind, Notification.channel == "email")
        return list(session.scalars(stmt.order_by(Notification.id)))


def _breaches_due(app, client, tenant) -> list[int]:
    """LEADS leads captured 35 minutes ago, nobody has called: their speed-to-lead breach jobs."""
    open_all_day(client, tenant, clock.now())
    sla = {"speed_to_lead_minutes": 30, "first_response_minutes": 600, "warning_share": 0.8}
    resp = client.put("/api/clinic", json={"settings": {"sla": sla}}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    captured = clock.now() - timedelta(minutes=35)
    for i in range(LEADS):
        lead_id = capture_at(app, tenant, captured, email=f"lead{i}@example.com")
        run_events(app, lead_id, captured + timedelta(seconds=1))
    breaches = _jobs(app.extensions["followup.db"], "sla.breach")
    return [job.id for job in breaches if job.due_at <= clock.now()]


def test_a_batch_of_breaches_tells_the_admin_by_one_job_and_every_email_goes_once(
    app, db, client, tenant, mailbox
):
    breaches = _breaches_due(app, client, tenant)
    assert len(breaches) == LEADS
    with app.app_context():
        outcomes = runner.run_batch(db=get_db(), job_ids=breaches, now=clock.now())
    assert set(outcomes.values()) == {"done"}

    emails = _emails(db, "escalation")
    admin = tenant.users["clinic_admin"]
    assert len(emails) == LEADS and {e.to_address for e in emails} == {admin.email}
    # One job carries them, in the transactional lane; none of its own each.
    [together] = _jobs(db, outgoing.DELIVER_TOGETHER)
    assert sorted(together.payload["notification_ids"]) == [e.id for e in emails]
    assert _jobs(db, *outgoing.DELIVER_KINDS, outgoing.DELIVER_BATCH) == []

    with thread_worker(app):
        wait_for(lambda: {e.status for e in _emails(db, "escalation")} == {"sent"}, timeout=60)
        time.sleep(1)  # a stray second send would land now
    to_admin = [m for m in mailbox.messages if m["To"] == admin.email]
    assert len(to_admin) == LEADS and set(mailbox.accepted.values()) == {1}


def _alert(tenant, name: str) -> outgoing.OutgoingMessage:
    return outgoing.OutgoingMessage(
        clinic_id=tenant.id,
        channel="email",
        to_address=f"{name}@example.com",
        template="staff_alert",
        context={"title": "Overdue", "body": "A call is overdue.", "link": "/", "user_name": "Sam"},
        dedupe_key=f"together:{name}",
        kind="overdue",
    )


def test_a_transient_failure_in_a_transactional_batch_is_retried_in_that_lane(app, db, tenant, mailbox):
    mailbox.transient_keys = {"together:a2"}  # 451 to its first attempt only
    with app.app_context(), db.unit_of_work() as session:
        for i in range(4):
            outgoing.send(session=session, message=_alert(tenant, f"a{i}"), now=clock.now())
    with thread_worker(app), sweeping(app):
        wait_for(lambda: {e.status for e in _emails(db, "overdue")} == {"sent"}, timeout=60)
        time.sleep(1)
    assert mailbox.attempts == {"together:a0": 1, "together:a1": 1, "together:a2": 2, "together:a3": 1}
    assert set(mailbox.accepted.values()) == {1} and len(mailbox.accepted) == 4
    jobs = _jobs(db, *outgoing.DELIVER_KINDS, outgoing.DELIVER_BATCH, outgoing.DELIVER_TOGETHER)
    # The batch and its retry, both transactional: never the campaigns' lane.
    assert sorted(len(j.payload["notification_ids"]) for j in jobs) == [1, 4]
    assert {j.kind for j in jobs} == {outgoing.DELIVER_TOGETHER}


def test_a_message_alone_or_in_a_savepoint_has_a_job_of_its_own(app, db, tenant):
    with app.app_context(), Statements(db.engine) as seen, db.unit_of_work() as session:
        outgoing.send(session=session, message=_alert(tenant, "alone"), now=clock.now())
    assert seen.updates_of_notifications() == 0  # its row is written whole: no UPDATE after it
    # A savepoint may roll back alone: each message's job is written with it.
    with app.app_context(), db.unit_of_work() as session, session.begin_nested():
        outgoing.send(session=session, message=_alert(tenant, "nested1"), now=clock.now())
        outgoing.send(session=session, message=_alert(tenant, "nested2"), now=clock.now())
    jobs = _jobs(db, *outgoing.DELIVER_KINDS, outgoing.DELIVER_BATCH, outgoing.DELIVER_TOGETHER)
    assert sorted(j.kind for j in jobs) == [outgoing.DELIVER] * 3
