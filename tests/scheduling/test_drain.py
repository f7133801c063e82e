"""Events processing drains: many new leads wake one worker, which processes them all, once each."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.tasks.sla import service as sla
from app.platform import clock
from app.platform.app_db import get_db
from app.platform.events.consumers import PROCESS_KIND
from app.platform.scheduling import runner, sweeps
from app.platform.scheduling.models import ScheduledJob
from app.platform.scheduling.service import wake_key
from tests.automation.kit import tasks_of
from tests.leadkit import create_lead
from tests.ledger import effects, queued, queued_job_ids, schedule_many
from tests.workers import thread_worker, wait_for


def _processing_statuses(db) -> list[str]:
    with db.unit_of_work() as session:
        return list(session.scalars(sa.select(ScheduledJob.status).where(ScheduledJob.kind == PROCESS_KIND)))


def _kinds_of(db, job_ids: list[int]) -> set[str]:
    with db.unit_of_work() as session:
        return set(session.scalars(sa.select(ScheduledJob.kind).where(ScheduledJob.id.in_(job_ids))))


def _capture(client, tenant, count: int) -> list[int]:
    return [
        create_lead(
            client, tenant, first_name=f"Parent{n}", phone=f"+1415555{n:04d}", email=f"p{n}@example.com"
        )["id"]
        for n in range(count)
    ]


def test_twenty_new_leads_wake_one_worker_which_processes_each_once(app, client, db, redis, tenant):
    leads = _capture(client, tenant, 20)
    # Twenty processing jobs in the ledger, one message on the broker: the first lead's wake-up.
    assert _processing_statuses(db) == ["dispatched"] * 20
    assert len(queued_job_ids(redis, "realtime")) == 1
    with thread_worker(app):
        wait_for(lambda: _processing_statuses(db) == ["done"] * 20, timeout=60)
    # What waits on the queue is the leads' own timers due minutes from now (their SLA clocks) and at
    # most a wake-up the stopping worker had fetched and not run: it names rows already done, which a
    # delivery skips (the claim is a compare-and-set), so nothing runs twice.
    assert _kinds_of(db, queued_job_ids(redis, "realtime")) <= {PROCESS_KIND, sla.WARN, sla.BREACH}
    assert _processing_statuses(db) == ["done"] * 20
    for lead_id in leads:  # speed to lead ran once per lead: one initial call task each
        assert [task.title for task in tasks_of(app, lead_id)] == ["Initial contact"]


def test_a_lost_wake_up_is_recovered_by_the_redispatch_sweep(app, client, db, redis, tenant):
    leads = _capture(client, tenant, 3)
    redis.flushdb()  # the wake-up message and its flag are gone (a flushed or failed-over Redis)
    later = clock.now() + timedelta(seconds=app.config["SETTINGS"].redispatch_grace_seconds + 1)
    with app.app_context():
        assert sweeps.redispatch_stale(db=get_db(), now=later) == 3
    with thread_worker(app):
        wait_for(lambda: _processing_statuses(db) == ["done"] * 3, timeout=60)
    for lead_id in leads:
        assert [task.title for task in tasks_of(app, lead_id)] == ["Initial contact"]


def test_a_drainer_leaves_a_wake_up_for_rows_not_due_yet_that_published_nothing(app, db, redis, tenant):
    """Re-scoring is due a moment after its events: rows committed while a wake-up was out publish
    nothing, and the drainer that finds nothing due leaves one for the earliest of them."""
    now = clock.now()
    with app.app_context():
        redis.set(wake_key("test.drained_later"), "1")  # a wake-up is out: these commits publish nothing
        with db.unit_of_work() as session:
            rows = schedule_many(
                session=session,
                jobs=[
                    {
                        "kind": "test.drained_later",
                        "due_at": now + timedelta(seconds=3 + i),
                        "dedupe_key": f"later{i}",
                        "clinic_id": tenant.id,
                    }
                    for i in range(2)
                ],
                now=now,
            )
        assert queued_job_ids(redis, "realtime") == []
        assert runner.drain(db=get_db(), kind="test.drained_later", clock=lambda: now) == 0  # nothing due yet
        # The earliest, with its eta. (Seen once in CI with the later row's message beside it; the
        # messages are printed should it happen again.)
        assert queued_job_ids(redis, "realtime") == [rows[0].id], queued(redis, "realtime")
        # Its delivery, when due, drains both.
        assert runner.run_job(
            db=get_db(),
            job_id=rows[0].id,
            now=rows[1].due_at,
            delivery=runner.Delivery(clock=lambda: rows[1].due_at),
        )
    assert effects(db) == (2, 2)


def test_a_kind_due_when_written_leaves_no_wake_up_for_later_rows(app, db, redis, tenant):
    """Events processing is due the moment its events commit: each row woke a worker or was taken
    by a drainer, so a drainer that finds nothing due spends no look for later rows (a retried row
    carries its own message)."""
    now = clock.now()
    with app.app_context():
        redis.set(wake_key("test.drained"), "1")
        with db.unit_of_work() as session:
            schedule_many(
                session=session,
                jobs=[
                    {
                        "kind": "test.drained",
                        "due_at": now + timedelta(seconds=3),
                        "dedupe_key": "soon",
                        "clinic_id": tenant.id,
                    }
                ],
                now=now,
            )
        redis.delete(wake_key("test.drained"))
        assert runner.drain(db=get_db(), kind="test.drained", clock=lambda: now) == 0
        assert queued_job_ids(redis, "realtime") == []
        assert redis.get(wake_key("test.drained")) is None


def test_a_drainers_wake_up_for_later_rows_waits_to_serve_them_together(app, db, redis, tenant):
    """Rows of a kind due a moment after their events come milliseconds apart while leads arrive:
    the wake-up a drainer leaves is for `background_delay_seconds` from now at the earliest, so one
    delivery serves them together instead of one delivery (and claim, and looks) each."""
    now = clock.now()
    delay = app.config["SETTINGS"].background_delay_seconds
    with app.app_context():
        redis.set(wake_key("test.drained_later"), "1")
        with db.unit_of_work() as session:
            rows = schedule_many(
                session=session,
                jobs=[
                    {
                        "kind": "test.drained_later",
                        "due_at": now + timedelta(milliseconds=1200 + 100 * i),  # past the early tolerance
                        "dedupe_key": f"soon{i}",
                        "clinic_id": tenant.id,
                    }
                    for i in range(3)
                ],
                now=now,
            )
        redis.delete(wake_key("test.drained_later"))
        assert runner.drain(db=get_db(), kind="test.drained_later", clock=lambda: now) == 0
        [wake_up] = queued(redis, "realtime")
        assert wake_up["job_id"] == rows[0].id
        # Not the first row's own time: the moment's rows together.
        assert datetime.fromisoformat(wake_up["eta"]) >= now + timedelta(seconds=delay)
        later = now + timedelta(seconds=delay)
        assert runner.run_job(
            db=get_db(), job_id=rows[0].id, now=later, delivery=runner.Delivery(clock=lambda: later)
        )
    assert effects(db) == (3, 3)  # the one delivery ran all three


def test_a_delivery_that_finds_nothing_due_leaves_a_wake_up_due_later_in_place(app, db, redis, tenant):
    """Re-scoring rows come due a moment after they are written. A delivery of the kind that finds
    none due yet (its own row taken by another drainer) leaves the flag of the wake-up that is due
    later: it adds no wake-up of its own, and the next commits publish nothing, that wake-up runs
    them. (Each such delivery used to clear the flag, so the next commit published a message of its
    own, whose delivery cleared it again: a message per row.)"""
    now = clock.now()

    def job(key: str, seconds: float) -> dict:
        return {
            "kind": "test.drained_later",
            "due_at": now + timedelta(seconds=seconds),
            "dedupe_key": key,
            "clinic_id": tenant.id,
        }

    with app.app_context():
        with db.unit_of_work() as session:
            [first] = schedule_many(session=session, jobs=[job("first", 3)], now=now)
        assert queued_job_ids(redis, "realtime") == [first.id]  # the wake-up, due in 3 s
        assert runner.drain(db=get_db(), kind="test.drained_later", clock=lambda: now) == 0
        with db.unit_of_work() as session:
            schedule_many(session=session, jobs=[job("second", 3.1)], now=now)
        assert queued_job_ids(redis, "realtime") == [first.id]  # still the one wake-up
        later = now + timedelta(seconds=3.1)
        assert runner.run_job(
            db=get_db(), job_id=first.id, now=later, delivery=runner.Delivery(clock=lambda: later)
        )
    assert effects(db) == (2, 2)  # its delivery ran both


def test_a_drain_out_of_time_hands_the_rest_to_a_new_delivery(app, db, redis, tenant, monkeypatch):
    """Under a steady arrival of rows a drain would never end, and a worker told to stop (a deploy's
    SIGTERM) waits for the task it runs: after DRAIN_SECONDS the drain stops and sends a message for
    the oldest due row, whose delivery drains the rest (tests/reliability/test_rolling_upgrade.py)."""
    now = clock.now()
    with app.app_context():
        redis.set(wake_key("test.drained"), "1")  # a wake-up is out: these commits publish nothing
        with db.unit_of_work() as session:
            rows = schedule_many(
                session=session,
                jobs=[
                    {"kind": "test.drained", "due_at": now, "dedupe_key": f"due{i}", "clinic_id": tenant.id}
                    for i in range(3)
                ],
                now=now,
            )
        assert queued_job_ids(redis, "realtime") == []
        monkeypatch.setattr(runner, "DRAIN_SECONDS", -1.0)  # its time is up before its first row
        assert runner.drain(db=get_db(), kind="test.drained", clock=lambda: now) == 0
        assert queued_job_ids(redis, "realtime") == [rows[0].id]  # the rest, handed on at once
        assert redis.get(wake_key("test.drained")) is not None  # the flag stays out for that delivery
        monkeypatch.setattr(runner, "DRAIN_SECONDS", 5.0)
        assert runner.run_job(
            db=get_db(), job_id=rows[0].id, now=now, delivery=runner.Delivery(clock=lambda: now)
        )
    assert effects(db) == (3, 3)  # its delivery ran all three, each once
