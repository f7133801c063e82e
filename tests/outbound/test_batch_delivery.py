"""A batch claims and records each window of messages in one statement each, sends over one SMTP
connection kept across batches (pipelined where the server offers it), retries its transient failures
once, later, as a batch; and a worker killed mid-batch never sends a message twice."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.outbound import outgoing
from app.domains.outbound.models import Notification
from app.domains.outbound.worker import attempts, batches
from app.platform import clock
from app.platform.app_db import get_db
from app.platform.scheduling import run_job
from app.platform.scheduling.models import ScheduledJob
from tests.ledger import realtime_waiting
from tests.outbound.fakes import free_port, smtp_server
from tests.outbound.kit import FAST_DELIVERY, all_in, as_env, rows, smtp_settings, use
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.workers import subprocess_worker, thread_worker, wait_for


@pytest.fixture
def fast_delivery(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, **FAST_DELIVERY)
    return settings


def send_emails(app, db, tenant, n: int, prefix: str = "b") -> list[int]:
    with app.app_context(), db.unit_of_work() as session:
        return outgoing.queue_many(
            session=session,
            channel="email",
            messages=[
                {
                    "clinic_id": tenant.id,
                    "to_address": f"patient{i}@example.com",
                    "template": "lead_message",
                    "context": {"subject": f"Hello {i}", "body": "We would love to see you."},
                    "dedupe_key": f"{prefix}:{i}",
                }
                for i in range(n)
            ],
            now=clock.now(),
        )


class Statements:
    """The statements and commits a database engine runs while counting."""

    def __init__(self, engine):
        self.engine, self.sql, self.commits = engine, [], 0

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._statement)
        sa.event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._statement)
        sa.event.remove(self.engine, "commit", self._commit)

    def _statement(self, conn, cursor, statement, parameters, context, executemany):
        self.sql.append(" ".join(statement.split()).lower())

    def _commit(self, conn):
        self.commits += 1

    def updates_of_notifications(self) -> int:
        return sum(s.startswith("update notifications") for s in self.sql)


def test_each_window_is_claimed_in_one_statement_and_recorded_with_the_next_claim(
    app, db, tenant, fast_delivery, monkeypatch
):
    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, notification_claim_window=5, **smtp_settings(port))
        ids = send_emails(app, db, tenant, 12)
        with app.app_context(), Statements(db.engine) as seen:
            outcomes = batches.deliver_batch(db=db, send_hooks=db.wiring.send_hooks, notification_ids=ids)
    assert outcomes == {"sent": 12}
    assert len(server.accepted) == 12 and set(server.accepted.values()) == {1}
    # Windows of 5, 5 and 2: claim 1 | record 1 + claim 2 | record 2 + claim 3 | record 3.
    # (One message at a time, this was a transaction per message: 13.)
    assert seen.commits == 4
    if db.dialect == "postgresql":  # SQLite writes the outcomes row by row: no round trips to save
        assert seen.updates_of_notifications() == 6
    assert {r.status for r in rows(db, ids)} == {"sent"} and {r.attempts for r in rows(db, ids)} == {1}


def test_a_batchs_transient_failures_are_retried_once_later_and_the_rest_sent_once(
    app, db, tenant, fast_delivery, monkeypatch
):
    monkeypatch.setattr(outgoing, "BATCH_SIZE", 10)
    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, notification_claim_window=4, **smtp_settings(port))
        server.transient_keys = {"b:2", "b:5", "b:9"}  # 451 to their first attempt only
        ids = send_emails(app, db, tenant, 10)
        with thread_worker(app), sweeping(app):
            wait_for(lambda: all_in(db, ids, {"sent"}), timeout=60)
            time.sleep(1)  # any stray second send would land now
    assert len(server.accepted) == 10 and set(server.accepted.values()) == {1}
    attempts = {f"b:{i}": r.attempts for i, r in enumerate(rows(db, ids))}
    assert attempts == {key: 2 if key in server.transient_keys else 1 for key in attempts}
    assert server.attempts == {key: 2 if key in server.transient_keys else 1 for key in attempts}
    # The three failures, from three windows, came back together as one batch job.
    with db.unit_of_work() as session:
        batches = session.scalars(
            sa.select(ScheduledJob).where(ScheduledJob.kind == outgoing.DELIVER_BATCH)
        ).all()
    assert sorted(len(j.payload["notification_ids"]) for j in batches) == [3, 10]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "lock-step"])
def test_one_connection_carries_every_batch_and_survives_refusals(
    app, db, tenant, fast_delivery, monkeypatch, pipelining
):
    with smtp_server() as (server, port):
        server.pipelining = pipelining
        server.refuse = {"patient3@example.com"}  # 550 to RCPT: a permanent failure, the session goes on
        server.transient_keys = {"b:5"}
        use(monkeypatch, fast_delivery, notification_claim_window=3, **smtp_settings(port))
        ids = send_emails(app, db, tenant, 9)
        with app.app_context():
            outcomes = [
                batches.deliver_batch(db=db, send_hooks=db.wiring.send_hooks, notification_ids=ids[i : i + 3])
                for i in (0, 3, 6)
            ]
    assert outcomes == [{"sent": 3}, {"failed": 1, "retrying": 1, "sent": 1}, {"sent": 3}]
    assert server.connections == 1
    assert sorted(server.accepted) == [f"b:{i}" for i in (0, 1, 2, 4, 6, 7, 8)]
    assert set(server.accepted.values()) == {1}
    # Pipelined: every envelope went in one write (MAIL, RCPT and DATA); lock-step: none did.
    assert server.pipelined_envelopes == (9 if pipelining else 0)
    refused = rows(db, [ids[3]])[0]
    assert refused.status == "failed" and "RCPT TO" in refused.last_error and "550" in refused.last_error


def test_a_connection_the_server_dropped_between_batches_is_replaced_and_nothing_is_lost(
    app, db, tenant, fast_delivery, monkeypatch
):
    port = free_port()
    use(monkeypatch, fast_delivery, **smtp_settings(port))
    ids = send_emails(app, db, tenant, 6)
    with app.app_context():
        with smtp_server(port) as (first, _):
            assert batches.deliver_batch(
                db=db, send_hooks=db.wiring.send_hooks, notification_ids=ids[:3]
            ) == {"sent": 3}
        with smtp_server(port) as (second, _):  # a restart: the worker's kept connection is dead
            assert batches.deliver_batch(
                db=db, send_hooks=db.wiring.send_hooks, notification_ids=ids[3:]
            ) == {"sent": 3}
    assert sorted(first.accepted) == ["b:0", "b:1", "b:2"] and sorted(second.accepted) == [
        "b:3",
        "b:4",
        "b:5",
    ]
    assert set(first.accepted.values()) == set(second.accepted.values()) == {1}
    assert second.connections == 1


def test_a_reply_lost_mid_batch_is_outcome_unknown_and_the_next_message_goes_on_a_new_connection(
    app, db, tenant, fast_delivery, monkeypatch
):
    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, notification_send_timeout=0.5, **smtp_settings(port))
        server.stall_after_data, server.stall_keys = 5, {"b:1"}  # b:1 is taken, its answer comes too late
        ids = send_emails(app, db, tenant, 4)
        with app.app_context():
            outcomes = batches.deliver_batch(db=db, send_hooks=db.wiring.send_hooks, notification_ids=ids)
    # b:2's envelope went out with b:1's content, on the connection then given up: sent again on a
    # new one, once (its content had never been written).
    assert outcomes == {"sent": 3, "unknown": 1}
    assert sorted(server.accepted) == ["b:0", "b:1", "b:2", "b:3"] and set(server.accepted.values()) == {1}
    assert server.connections == 2
    found = rows(db, ids)
    assert [r.status for r in found] == ["sent", "unknown", "sent", "sent"]
    assert found[1].last_error.startswith("outcome unknown")


@pytest.mark.reliability
def test_a_worker_killed_mid_batch_sends_nothing_twice(app, db, tenant, monkeypatch):
    """The window in flight becomes `unknown` (as a single message in flight does),
    the windows the batch never reached are sent once by another worker."""
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, **FAST_DELIVERY)  # a send times out after 2 s
    with smtp_server() as (server, port):
        server.stall_after_data, server.stall_keys = 30, {"b:4"}  # the 2nd message of the 2nd window
        env = WORKER_ENV | as_env(FAST_DELIVERY | smtp_settings(port) | {"notification_claim_window": 3})
        ids = send_emails(app, db, tenant, 9)  # one batch (BATCH_SIZE 50): windows 0-2, 3-5, 6-8
        with subprocess_worker(settings, name="doomed", concurrency=1, **env) as doomed:
            wait_for(lambda: "b:4" in server.accepted, timeout=60)
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait()
        assert [r.status for r in rows(db, ids)] == ["sent"] * 3 + ["sending"] * 3 + ["pending"] * 3
        server.stall_after_data = 0
        a_minute_ago = clock.now() - timedelta(seconds=60)  # past the sweep's cutoff (7 s)
        with db.unit_of_work() as session:
            session.execute(
                sa.update(Notification).values(sending_at=a_minute_ago, next_attempt_at=a_minute_ago)
            )
        with app.app_context(), db.unit_of_work() as session:
            assert attempts.recover_stuck_sends(session=session, now=clock.now(), settings=db.settings) == 6
        with subprocess_worker(settings, name="rescuer", **env), sweeping(app):
            wait_for(lambda: all_in(db, ids[6:], {"sent"}), timeout=60)
            time.sleep(1)  # any stray second send would land now
    found = rows(db, ids)
    assert [r.status for r in found] == ["sent"] * 3 + ["unknown"] * 3 + ["sent"] * 3
    assert {r.last_error for r in found[3:6]} == {
        f"{attempts.OUTCOME_UNKNOWN_STOPPED}; may already have reached the lead"
    }
    # b:3 and b:4 reached the server before the kill, b:5 never did; nothing arrived twice.
    assert sorted(server.accepted) == [f"b:{i}" for i in (0, 1, 2, 3, 4, 6, 7, 8)]
    assert set(server.accepted.values()) == {1}


def test_a_batch_steps_aside_between_windows_while_a_new_lead_waits_and_its_rest_goes_out_once_later(
    app, db, tenant, fast_delivery, monkeypatch
):
    """A campaign's batch asks between windows whether a new lead's processing waits: if so, it
    stops after the window it sent and hands the rest back as one batch job, for
    `yield_again_seconds` later. Without it the batch sent every window whatever the realtime path
    did (docs/performance.md). The handed-back job then sends all its windows, even while a lead
    still waits: a campaign is delayed, never starved."""
    with smtp_server() as (server, port):
        use(monkeypatch, fast_delivery, notification_claim_window=5, **smtp_settings(port))
        ids = send_emails(app, db, tenant, 12)
        realtime_waiting(db, tenant, since_seconds=5)
        with app.app_context():
            started = clock.now()
            outcomes = batches.deliver_batch(db=db, send_hooks=db.wiring.send_hooks, notification_ids=ids)
        assert outcomes == {"sent": 5, "stepped aside": 7}
        assert sorted(server.accepted) == [f"b:{i}" for i in range(5)]  # the first window only
        left = rows(db, ids[5:])
        assert {r.status for r in left} == {"pending"} and {r.attempts for r in left} == {0}
        with db.unit_of_work() as session:
            later = session.scalars(
                sa.select(ScheduledJob).where(
                    ScheduledJob.kind == outgoing.DELIVER_BATCH, ScheduledJob.due_at > started
                )
            ).all()
        assert [j.payload["notification_ids"] for j in later] == [ids[5:]]  # one job for the rest
        assert later[0].due_at >= started + timedelta(seconds=fast_delivery.yield_again_seconds)

        with app.app_context():  # its handler, as a worker runs it (not a background delivery)
            assert run_job(db=get_db(), job_id=later[0].id, now=later[0].due_at) == "done"
    assert len(server.accepted) == 12 and set(server.accepted.values()) == {1}
    assert {r.status for r in rows(db, ids)} == {"sent"} and {r.attempts for r in rows(db, ids)} == {1}
