"""Many messages at once: send_emails writes the rows and batch jobs in bulk; batches send each once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.outbound import outgoing
from app.domains.outbound.models import Notification
from app.domains.outbound.worker import attempts, batches
from app.platform import clock
from app.platform.scheduling.models import DONE, ScheduledJob
from tests.outbound.fakes import smtp_server
from tests.outbound.kit import FAST_DELIVERY, all_in, rows, smtp_settings, use
from tests.reliability.conftest import sweeping
from tests.workers import thread_worker, wait_for


@pytest.fixture
def fast_delivery(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, **FAST_DELIVERY)
    return settings


def message(tenant, i: int, prefix: str = "many", **extra) -> dict:
    return {
        "clinic_id": tenant.id,
        "to_address": f"patient{i}@example.com",
        "template": "lead_message",
        "context": {"subject": f"Hello {i}", "body": "We would love to see you."},
        "dedupe_key": f"{prefix}:{i}",
        **extra,
    }


def send_emails(app, db, messages: list[dict]) -> list[int]:
    with app.app_context(), db.unit_of_work() as session:
        return outgoing.queue_many(session=session, channel="email", messages=messages, now=clock.now())


def jobs(db, kind: str) -> list[ScheduledJob]:
    with db.unit_of_work() as session:
        return list(session.scalars(sa.select(ScheduledJob).where(ScheduledJob.kind == kind)))


def test_send_emails_writes_rendered_rows_and_one_batch_job_per_batch_size(app, db, tenant, monkeypatch):
    monkeypatch.setattr(outgoing, "BATCH_SIZE", 4)
    ids = send_emails(app, db, [message(tenant, i) for i in range(10)])
    assert len(ids) == 10
    found = rows(db, ids)
    assert [r.id for r in found] == sorted(ids) and {r.status for r in found} == {"pending"}
    assert found[0].title == "Hello 0" and found[0].body_html and found[0].next_attempt_at
    batches = jobs(db, outgoing.DELIVER_BATCH)
    assert sorted(len(j.payload["notification_ids"]) for j in batches) == [2, 4, 4]
    assert sorted(i for j in batches for i in j.payload["notification_ids"]) == sorted(ids)
    assert {j.queue for j in batches} == {"notifications"} and {j.clinic_id for j in batches} == {tenant.id}


def test_send_emails_adds_nothing_for_an_existing_or_repeated_dedupe_key(app, db, tenant):
    (first,) = send_emails(app, db, [message(tenant, 0)])
    ids = send_emails(app, db, [message(tenant, 0), message(tenant, 1), message(tenant, 1)])
    assert len(ids) == 1 and ids[0] != first
    with db.unit_of_work() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 2


def test_send_emails_rejects_unknown_fields(app, db, tenant):
    with pytest.raises(TypeError, match="unknown message fields: color"):
        send_emails(app, db, [message(tenant, 0, color="red")])


def test_messages_not_before_later_wait_in_their_own_batch(app, db, tenant):
    later = clock.now() + timedelta(hours=2)
    send_emails(app, db, [message(tenant, 0), message(tenant, 1, not_before=later)])
    due = sorted(j.due_at for j in jobs(db, outgoing.DELIVER_BATCH))
    assert len(due) == 2 and abs((due[1] - later).total_seconds()) < 1


def test_batches_deliver_each_email_once_with_transient_failures(app, db, tenant, fast_delivery, monkeypatch):
    monkeypatch.setattr(outgoing, "BATCH_SIZE", 7)
    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, **smtp_settings(port))
        server.transient_first = 1  # every message is deferred (451) once, then retried on its own
        ids = send_emails(app, db, [message(tenant, i) for i in range(30)])
        with thread_worker(app), sweeping(app):
            wait_for(lambda: all_in(db, ids, {"sent"}), timeout=60)
            time.sleep(1)  # any stray second send would land now
    assert len(server.accepted) == 30 and set(server.accepted.values()) == {1}
    assert {r.attempts for r in rows(db, ids)} == {2}
    # The retries travelled as batches too (one per batch that had failures), not a job per message.
    assert not jobs(db, outgoing.DELIVER) and len(jobs(db, outgoing.DELIVER_BATCH)) == 2 * 5


def test_a_batch_skips_rows_another_job_already_took(app, db, tenant, fast_delivery, monkeypatch):
    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, **smtp_settings(port))
        ids = send_emails(app, db, [message(tenant, i) for i in range(3)])
        with db.unit_of_work() as session:  # as if a single delivery job had claimed the first one
            session.execute(sa.update(Notification).where(Notification.id == ids[0]).values(status="sending"))
        with app.app_context():
            outcomes = batches.deliver_batch(db=db, send_hooks=db.wiring.send_hooks, notification_ids=ids)
    assert outcomes == {"skipped": 1, "sent": 2}
    assert set(server.accepted) == {"many:1", "many:2"}


def test_a_batch_past_its_time_budget_hands_the_rest_back_as_single_jobs(
    app, db, tenant, fast_delivery, monkeypatch
):
    use(monkeypatch, fast_delivery, task_soft_time_limit=0)
    ids = send_emails(app, db, [message(tenant, i) for i in range(3)])
    with app.app_context():
        assert batches.deliver_batch(db=db, send_hooks=db.wiring.send_hooks, notification_ids=ids) == {
            "handed back": 3
        }
    singles = jobs(db, outgoing.DELIVER_BULK)  # a campaign's rows, in the bulk lane
    assert sorted(j.subject_id for j in singles) == sorted(ids)
    assert {r.status for r in rows(db, ids)} == {"pending"}


def test_rows_a_dead_batch_never_reached_are_rescheduled_and_sent_once(
    app, db, tenant, fast_delivery, monkeypatch
):
    use(monkeypatch, fast_delivery, notification_stuck_seconds=7.0)
    ids = send_emails(app, db, [message(tenant, i) for i in range(4)])
    # The batch job ran (done) and its worker died before sending anything: rows pending, no open job.
    with db.unit_of_work() as session:
        session.execute(sa.update(ScheduledJob).values(status=DONE))
    with app.app_context(), db.unit_of_work() as session:
        assert (
            attempts.recover_stuck_sends(session=session, now=clock.now(), settings=db.settings) == 0
        )  # not overdue yet
    with db.unit_of_work() as session:  # a minute later (the sweep's cutoff is 7 s)
        session.execute(sa.update(Notification).values(next_attempt_at=clock.now() - timedelta(seconds=60)))
    with app.app_context(), db.unit_of_work() as session:
        assert attempts.recover_stuck_sends(session=session, now=clock.now(), settings=db.settings) == 4
    with app.app_context(), db.unit_of_work() as session:
        assert (
            attempts.recover_stuck_sends(session=session, now=clock.now(), settings=db.settings) == 0
        )  # each has a job now
    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, **smtp_settings(port))
        with thread_worker(app), sweeping(app):
            wait_for(lambda: all_in(db, ids, {"sent"}), timeout=60)
            time.sleep(1)
    assert len(server.accepted) == 4 and set(server.accepted.values()) == {1}
