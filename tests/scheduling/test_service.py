"""The ledger's use cases against the real database and Redis (no worker: run_job is called directly)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.platform import clock
from app.platform.app_db import get_db
from app.platform.db import Frozen
from app.platform.scheduling import (
    Job,
    attempts,
    cancel,
    cancel_job,
    registry,
    run_job,
    runner,
    sweeps,
    written,
)
from app.platform.scheduling.models import ScheduledJob
from tests.ledger import effects, job, queued, queued_job_ids, schedule, schedule_many, status_counts


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def settings(app, monkeypatch):
    """The app's settings; a test may change fields (monkeypatch restores them)."""

    class Setter:
        def __getattr__(self, name):
            return getattr(app.config["SETTINGS"], name)

        def __setattr__(self, name, value):
            monkeypatch.setattr(app.config["SETTINGS"], name, value)

    return Setter()


def add(db, tenant, *, key, due_in: float = 0.0, kind="test.effect", now=None, **fields) -> ScheduledJob:
    now = now or clock.now()
    with db.unit_of_work() as session:
        return schedule(
            session=session,
            kind=kind,
            due_at=now + timedelta(seconds=due_in),
            dedupe_key=key,
            now=now,
            clinic_id=tenant.id,
            **fields,
        )


# --- schedule -------------------------------------------------------------------------------------


def test_the_same_dedupe_key_twice_is_a_no_op_that_keeps_the_callers_transaction(ctx, db, tenant, redis):
    now = clock.now()
    with db.unit_of_work() as session:
        first = schedule(
            session=session, kind="test.effect", due_at=now, dedupe_key="k1", now=now, clinic_id=tenant.id
        )
        again = schedule(
            session=session, kind="test.effect", due_at=now, dedupe_key="k1", now=now, clinic_id=tenant.id
        )
        # The transaction is still usable after the conflict (no aborted transaction on PostgreSQL).
        other = schedule(
            session=session, kind="test.effect", due_at=now, dedupe_key="k2", now=now, clinic_id=tenant.id
        )
    assert again.id == first.id and other.id != first.id
    later = add(db, tenant, key="k1", due_in=3600)  # in another transaction: the existing row, unchanged
    assert later.id == first.id and later.due_at == first.due_at
    assert status_counts(db) == {"dispatched": 2}
    assert queued_job_ids(redis) == sorted([first.id, other.id])


def test_a_transaction_that_rolls_back_schedules_nothing(ctx, db, tenant, redis):
    now = clock.now()
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        schedule(
            session=session, kind="test.effect", due_at=now, dedupe_key="r", now=now, clinic_id=tenant.id
        )
        raise RuntimeError("the use case failed after scheduling")
    assert status_counts(db) == {}
    assert queued(redis) == []


def test_rows_due_within_the_horizon_are_published_with_their_eta_after_commit(ctx, db, tenant, redis):
    now = clock.now()
    with db.unit_of_work() as session:
        soon = schedule(
            session=session,
            kind="test.effect",
            due_at=now + timedelta(seconds=30),
            dedupe_key="soon",
            now=now,
            clinic_id=tenant.id,
            subject_type="lead",
            subject_id=7,
            payload={"x": 1},
            origin={"rule_id": 3, "rule_version": 2, "event_id": 99},
        )
        assert queued(redis) == []  # nothing before the commit
    [message] = queued(redis)
    assert message["job_id"] == soon.id and message["task"] == "scheduling.run_job"
    assert message["eta"].startswith((now + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S"))
    row = job(db, soon.id)
    assert row.status == "dispatched" and row.dispatched_at == now
    assert row.origin == {"rule_id": 3, "rule_version": 2, "event_id": 99} and row.subject == "lead:7"


def test_the_queue_comes_from_the_kind(ctx, db, tenant, redis):
    notify = add(db, tenant, key="n", kind="test.notify")
    assert job(db, notify.id).queue == "notifications"
    assert queued_job_ids(redis, "notifications") == [notify.id] and queued(redis, "realtime") == []


def test_unknown_kinds_and_naive_times_are_refused(ctx, db, tenant):
    now = clock.now()
    with db.unit_of_work() as session:
        with pytest.raises(ValueError, match="unknown job kind"):
            schedule(session=session, kind="nope", due_at=now, dedupe_key="x", now=now)
        with pytest.raises(ValueError, match="timezone"):
            schedule(
                session=session, kind="test.effect", due_at=now.replace(tzinfo=None), dedupe_key="y", now=now
            )
    with pytest.raises(ValueError, match="queue"):
        registry.JobKinds([registry.JobKind("test.bad-queue", lambda **_: None, queue="nowhere")])


def test_far_future_rows_stay_pending_until_a_sweep_promotes_them(ctx, db, tenant, redis, settings):
    settings.schedule_horizon_seconds = 600
    now = clock.now()
    far = add(db, tenant, key="far", due_in=3 * 86400, now=now)
    assert job(db, far.id).status == "pending" and queued(redis) == []

    assert sweeps.promote_due(db=get_db(), now=now + timedelta(hours=1)) == 0
    assert job(db, far.id).status == "pending"

    sweep_time = far.due_at - timedelta(seconds=599)
    assert sweeps.promote_due(db=get_db(), now=sweep_time) == 1
    row = job(db, far.id)
    assert row.status == "dispatched" and row.dispatched_at == sweep_time
    assert queued_job_ids(redis) == [far.id]
    assert sweeps.promote_due(db=get_db(), now=sweep_time) == 0  # claimed: a second sweep sends nothing


def test_a_commit_whose_dispatch_never_happened_is_sent_by_the_redispatch_sweep(ctx, db, tenant, redis):
    now = clock.now()
    session = db.new_unit()
    try:
        lost = schedule(
            session=session, kind="test.effect", due_at=now, dedupe_key="lost", now=now, clinic_id=tenant.id
        )
        session.write()
        session.session.commit()  # the Session's commit, not the unit's, which publishes: a "crash"
    finally:
        session.close()
    # Stored as dispatched with the commit (no UPDATE after it): the redispatch sweep sends it once
    # its grace has passed, and not before (a publish may be on its way).
    assert job(db, lost.id).status == "dispatched" and queued(redis) == []
    assert sweeps.promote_due(db=get_db(), now=now) == 0
    assert sweeps.redispatch_stale(db=get_db(), now=now + timedelta(seconds=59)) == 0
    assert sweeps.redispatch_stale(db=get_db(), now=now + timedelta(seconds=61)) == 1
    assert queued_job_ids(redis) == [lost.id]
    assert run_job(db=get_db(), job_id=lost.id, now=now) == "done"
    assert effects(db) == (1, 1)


def test_a_failed_publish_hands_the_rows_back_to_the_sweep(ctx, app, db, tenant, redis, monkeypatch):
    dispatcher = app.extensions["followup.dispatcher"]

    def broker_down(messages):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(dispatcher, "publish", broker_down)
    many = [add(db, tenant, key=f"down{i}") for i in range(3)]
    assert status_counts(db) == {"pending": 3}
    assert sweeps.promote_due(db=get_db(), now=clock.now()) == 0  # still down: back to pending again
    assert status_counts(db) == {"pending": 3}
    monkeypatch.undo()
    assert sweeps.promote_due(db=get_db(), now=clock.now()) == 3
    assert queued_job_ids(redis) == sorted(j.id for j in many)


def test_schedule_many_publishes_in_one_batch_and_skips_existing_keys(ctx, db, tenant, redis, settings):
    settings.sweep_batch_size = 400  # marks and publishes in several chunks
    now = clock.now()
    specs = [
        {
            "kind": "test.effect",
            "due_at": now + timedelta(seconds=i % 7),
            "dedupe_key": f"m{i}",
            "clinic_id": tenant.id,
        }
        for i in range(1200)
    ]
    with db.unit_of_work() as session:
        created = schedule_many(session=session, jobs=specs, now=now)
        again = schedule_many(session=session, jobs=specs[:10], now=now)
    assert len(created) == 1200 and again == []
    assert status_counts(db) == {"dispatched": 1200}
    assert queued_job_ids(redis) == sorted(j.id for j in created)


def test_schedule_many_takes_rows_of_draining_and_other_kinds_together(ctx, db, tenant, redis):
    # A draining kind's row is stored dispatched, another kind's is marked after the commit: one
    # multi-row INSERT carries both shapes.
    now = clock.now()
    specs = [
        {"kind": "events.process", "due_at": now, "dedupe_key": "mixed-drain", "payload": {"event_ids": []}},
        {"kind": "test.effect", "due_at": now, "dedupe_key": "mixed-other", "clinic_id": tenant.id},
    ]
    with db.unit_of_work() as session:
        created = schedule_many(session=session, jobs=specs, now=now)
    assert len(created) == 2
    assert status_counts(db) == {"dispatched": 2}


# --- cancel ---------------------------------------------------------------------------------------


def test_cancel_by_subject_and_kinds(ctx, db, tenant, redis):
    now = clock.now()
    a = add(db, tenant, key="a", subject_type="lead", subject_id=1)
    b = add(db, tenant, key="b", subject_type="lead", subject_id=1, due_in=86400)
    c = add(db, tenant, key="c", subject_type="lead", subject_id=1, kind="test.notify")
    d = add(db, tenant, key="d", subject_type="lead", subject_id=2)
    e = add(db, tenant, key="e", subject_type="task", subject_id=1)
    with db.unit_of_work() as session:
        assert cancel(session=session, now=now, subject_type="lead", subject_id=1, kinds=["test.notify"]) == 1
    with db.unit_of_work() as session:
        assert cancel(session=session, now=now, subject_type="lead", subject_id=1) == 2
        assert cancel(session=session, now=now, subject_type="lead", subject_id=1) == 0
    assert [job(db, j.id).status for j in (a, b, c, d, e)] == [
        "cancelled", "cancelled", "cancelled", "dispatched", "dispatched",
    ]  # fmt: skip
    assert job(db, a.id).finished_at == now
    # The message of a cancelled row is still in Redis; delivering it does nothing.
    assert run_job(db=get_db(), job_id=a.id, now=clock.now()) == "skipped"
    assert effects(db) == (0, 0)


def test_cancel_job_only_touches_open_jobs(ctx, db, tenant):
    open_job, ran = add(db, tenant, key="o"), add(db, tenant, key="r")
    assert run_job(db=get_db(), job_id=ran.id, now=clock.now()) == "done"
    with db.unit_of_work() as session:
        assert cancel_job(session=session, job_id=open_job.id, now=clock.now()) is True
        assert cancel_job(session=session, job_id=ran.id, now=clock.now()) is False
        assert cancel_job(session=session, job_id=999999, now=clock.now()) is False
    assert job(db, open_job.id).status == "cancelled" and job(db, ran.id).status == "done"


# --- run ------------------------------------------------------------------------------------------


def test_a_job_runs_once_and_a_second_delivery_does_nothing(ctx, db, tenant):
    one = add(db, tenant, key="one")
    now = clock.now()
    assert run_job(db=get_db(), job_id=one.id, now=now) == "done"
    assert run_job(db=get_db(), job_id=one.id, now=now) == "skipped"
    assert run_job(db=get_db(), job_id=123456, now=now) == "skipped"
    row = job(db, one.id)
    assert (row.status, row.attempts, row.finished_at, row.last_error) == ("done", 1, now, None)
    assert effects(db) == (1, 1)


def test_an_early_delivery_never_runs_early(ctx, db, tenant, redis):
    now = clock.now()
    soon = add(db, tenant, key="soon", due_in=120, now=now)
    far = add(db, tenant, key="far", due_in=86400, now=now)
    redis.delete("realtime")
    assert run_job(db=get_db(), job_id=soon.id, now=now) == "early"
    # Put back on the broker with its eta, since it is within the horizon.
    [message] = queued(redis)
    assert message["job_id"] == soon.id and message["eta"] is not None
    assert run_job(db=get_db(), job_id=far.id, now=now) == "early"
    assert len(queued(redis)) == 1  # beyond the horizon: left to the promote sweep
    assert status_counts(db) == {"dispatched": 1, "pending": 1} and effects(db) == (0, 0)
    # Within the tolerance (clock skew between hosts) it runs.
    assert run_job(db=get_db(), job_id=soon.id, now=soon.due_at - timedelta(seconds=0.5)) == "done"


def test_concurrent_duplicate_deliveries_take_effect_once(ctx, app, db, tenant):
    slow = add(db, tenant, key="slow", payload={"sleep": 0.5})
    outcomes, start = [], threading.Barrier(3)

    def deliver():
        with app.app_context():
            start.wait()
            outcomes.append(run_job(db=get_db(), job_id=slow.id, now=clock.now()))

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["done", "skipped", "skipped"]
    assert effects(db) == (1, 1) and job(db, slow.id).attempts == 1


def test_a_counted_attempt_runs_even_if_a_sweep_holds_its_row_for_a_moment(ctx, app, db, tenant):
    # The attempt in flight keeps every drainer and duplicate delivery off the row; had its claim
    # given up on a lock held for a moment (a sweep's or a dispatch's UPDATE), nothing but the
    # redispatch sweep, a grace period later, would have run it.
    row = add(db, tenant, key="held")
    now = clock.now()
    counted = attempts.count_attempt(db=db, job_id=row.id, now=now, settings=app.config["SETTINGS"])
    holder = db.engine.connect()
    holder.execute(
        sa.update(ScheduledJob).where(ScheduledJob.id == row.id).values(dispatched_at=now)
    )  # a sweep's claim, not yet committed
    outcomes = []

    def deliver():
        with app.app_context(), db.unit_of_work() as session:
            outcomes.append(runner._claim_and_run(db=db, session=session, counted=counted, now=now)[0])

    delivery = threading.Thread(target=deliver)
    delivery.start()
    delivery.join(timeout=0.5)
    holder.commit()
    holder.close()
    delivery.join(timeout=30)
    assert outcomes == ["done"]
    assert job(db, row.id).status == "done" and effects(db) == (1, 1)


def test_a_failing_handler_backs_off_then_succeeds_once(ctx, db, tenant, settings, redis):
    settings.job_retry_base_seconds = 10
    flaky = add(db, tenant, key="flaky", kind="test.flaky", payload={"fail_times": 2})
    now = clock.now()
    assert run_job(db=get_db(), job_id=flaky.id, now=now) == "retrying"
    row = job(db, flaky.id)
    assert row.attempts == 1 and row.status == "dispatched" and "flaky failure on attempt 1" in row.last_error
    assert now + timedelta(seconds=10) <= row.due_at <= now + timedelta(seconds=11)  # base * 2**0 + jitter
    assert effects(db) == (0, 0)  # the failed attempt's effect rolled back
    assert row.id in queued_job_ids(redis)  # re-published with its new eta

    assert run_job(db=get_db(), job_id=flaky.id, now=now) == "early"
    later = row.due_at
    assert run_job(db=get_db(), job_id=flaky.id, now=later) == "retrying"
    row = job(db, flaky.id)
    assert row.attempts == 2 and later + timedelta(seconds=20) <= row.due_at <= later + timedelta(seconds=22)
    assert run_job(db=get_db(), job_id=flaky.id, now=row.due_at) == "done"
    row = job(db, flaky.id)
    assert (row.status, row.attempts) == ("done", 3) and effects(db) == (1, 1)


def test_a_handler_that_always_fails_gives_up_after_max_attempts(ctx, db, tenant, settings):
    settings.job_max_attempts = 3
    settings.job_retry_base_seconds = 0.001
    bad = add(db, tenant, key="bad", kind="test.fails")
    per_row = add(db, tenant, key="bad1", kind="test.fails", max_attempts=1)
    outcomes = [run_job(db=get_db(), job_id=bad.id, now=clock.now() + timedelta(seconds=i)) for i in range(4)]
    assert outcomes == ["retrying", "retrying", "dead", "skipped"]
    row = job(db, bad.id)
    assert (row.status, row.attempts, row.last_error) == ("dead", 3, "RuntimeError: the provider said no")
    assert row.finished_at is not None
    assert run_job(db=get_db(), job_id=per_row.id, now=clock.now()) == "dead"
    assert effects(db) == (0, 0)


def test_a_retry_recorded_by_a_concurrent_delivery_is_not_counted_twice(ctx, db, tenant):
    bad = add(db, tenant, key="bad", kind="test.fails")
    with db.unit_of_work() as session:
        outcome = attempts.record_failure(
            session=session,
            job_id=bad.id,
            attempt=5,  # another delivery already moved attempts on
            error=RuntimeError("x"),
            now=clock.now(),
            settings=ctx.config["SETTINGS"],
        )
    assert outcome == "skipped" and job(db, bad.id).attempts == 0


def test_an_unknown_kind_fails_with_a_clear_error(ctx, db, tenant):
    now = clock.now()
    with db.unit_of_work() as session:
        orphan = ScheduledJob(
            kind="retired.kind", queue="realtime", due_at=now, dedupe_key="orphan", created_at=now, payload={}
        )
        session.add(orphan)
    assert run_job(db=get_db(), job_id=orphan.id, now=now) == "failed"
    row = job(db, orphan.id)
    assert row.status == "failed" and "no handler is registered for job kind 'retired.kind'" in row.last_error


def test_a_handler_can_schedule_more_work_dispatched_after_its_commit(ctx, db, tenant, redis):
    parent = add(db, tenant, key="parent", kind="test.chain")
    redis.delete("realtime")
    assert run_job(db=get_db(), job_id=parent.id, now=clock.now()) == "done"
    with db.unit_of_work() as session:
        child = session.scalars(
            sa.select(ScheduledJob).where(ScheduledJob.dedupe_key == f"chain-child:{parent.id}")
        ).one()
    assert child.status == "dispatched" and child.origin == {"parent_job": parent.id}
    assert queued_job_ids(redis) == [child.id]


# --- sweeps ---------------------------------------------------------------------------------------


def test_redispatch_resends_rows_the_broker_lost_once_per_grace(ctx, db, tenant, redis, settings):
    settings.redispatch_grace_seconds = 60
    now = clock.now()
    lost = add(db, tenant, key="lost", now=now)
    fresh = add(db, tenant, key="fresh", now=now + timedelta(seconds=30))
    redis.flushdb()
    assert sweeps.redispatch_stale(db=get_db(), now=now + timedelta(seconds=59)) == 0
    later = now + timedelta(seconds=61)
    assert sweeps.redispatch_stale(db=get_db(), now=later) == 1
    assert queued_job_ids(redis) == [lost.id]
    assert job(db, lost.id).dispatched_at == later
    assert job(db, fresh.id).dispatched_at == now + timedelta(seconds=30)  # due 30 s later: not yet
    assert (
        sweeps.redispatch_stale(db=get_db(), now=later + timedelta(seconds=1)) == 0
    )  # bumped: no double resend
    redis.flushdb()
    assert (
        sweeps.redispatch_stale(db=get_db(), now=later + timedelta(seconds=61)) == 2
    )  # lost again, and now fresh
    assert queued_job_ids(redis) == sorted([lost.id, fresh.id])


def test_overlapping_promote_sweeps_send_each_row_once(ctx, app, db, tenant, redis, settings):
    settings.sweep_batch_size = 250
    now = clock.now()
    # Scheduled longer ago than the horizon, so stored pending: every row waits for the promote sweep.
    long_ago = now - timedelta(seconds=settings.schedule_horizon_seconds + 1)
    session = db.new_unit()
    try:
        schedule_many(
            session=session,
            jobs=[
                {"kind": "test.effect", "due_at": now, "dedupe_key": f"p{i}", "clinic_id": tenant.id}
                for i in range(2000)
            ],
            now=long_ago,
        )
        session.commit()
    finally:
        session.close()
    counts, start = [], threading.Barrier(3)

    def sweep():
        with app.app_context():
            start.wait()
            counts.append(sweeps.promote_due(db=get_db(), now=now))

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(counts) == 2000
    ids = queued_job_ids(redis)
    assert len(ids) == 2000 and len(set(ids)) == 2000


def test_purge_drops_old_finished_rows_only(ctx, db, tenant, settings):
    settings.purge_done_after_days = 7
    settings.sweep_batch_size = 2
    # Years back: rows in no month's partition (PostgreSQL's DEFAULT, deleted one by one as on
    # SQLite); whole months dropped: test_partitions.py.
    old = clock.now() - timedelta(days=5 * 365)
    done = [add(db, tenant, key=f"d{i}", now=old) for i in range(3)]
    for row in done:
        assert run_job(db=get_db(), job_id=row.id, now=old) == "done"
    gone = add(db, tenant, key="c", now=old)
    with db.unit_of_work() as session:
        cancel_job(session=session, job_id=gone.id, now=old)
    failed = add(db, tenant, key="f", now=old, kind="test.fails", max_attempts=1)
    run_job(db=get_db(), job_id=failed.id, now=old)
    recent = add(db, tenant, key="recent")
    run_job(db=get_db(), job_id=recent.id, now=clock.now())
    assert sweeps.purge_done(db=get_db(), now=clock.now()) == 4
    assert status_counts(db) == {"dead": 1, "done": 1}


def _ledger_inserts(db, monkeypatch):
    """Counts the statements that write ledger rows on the app's engine while the block runs: those
    SQLAlchemy executes (its cursor events) and those run on the driver (`Frozen`, which a unit's
    commit uses for them on PostgreSQL)."""
    inserts = []

    def on_execute(conn, cursor, statement, *args):
        if "INSERT INTO scheduled_jobs" in statement:
            inserts.append(statement)

    run_on_driver = Frozen.execute

    def seen_on_driver(self, connection, params=None, **kwargs):
        on_execute(connection, None, self._compile(connection.dialect)[0])
        return run_on_driver(self, connection, params, **kwargs)

    monkeypatch.setattr(Frozen, "execute", seen_on_driver)
    sa.event.listen(db.engine, "before_cursor_execute", on_execute)
    return inserts, lambda: sa.event.remove(db.engine, "before_cursor_execute", on_execute)


def _effect(tenant, key: str, now, **more) -> dict:
    return {"kind": "test.effect", "due_at": now, "dedupe_key": key, "clinic_id": tenant.id, **more}


def test_rows_scheduled_for_the_commit_are_written_together_and_run(ctx, db, tenant, redis, monkeypatch):
    now = clock.now()
    inserts, stop = _ledger_inserts(db, monkeypatch)
    try:
        with db.unit_of_work() as session:
            for i in range(3):
                session.schedule(Job(now=now, **_effect(tenant, f"later{i}", now)))
            assert status_counts(db) == {}  # nothing written before the commit
    finally:
        stop()
    assert len(inserts) == 1  # the three rows in one statement
    assert status_counts(db) == {"dispatched": 3}
    ids = queued_job_ids(redis)
    assert len(ids) == 3
    for job_id in ids:
        assert run_job(db=get_db(), job_id=job_id, now=now) == "done"
    assert effects(db) == (3, 3)


def test_rows_scheduled_for_the_commit_are_forgotten_with_a_rollback(ctx, db, tenant, redis):
    now = clock.now()
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        session.schedule(Job(now=now, **_effect(tenant, "gone", now)))
        raise RuntimeError("the use case failed")
    assert status_counts(db) == {} and queued(redis) == []


def test_a_cancel_in_the_same_unit_cancels_rows_waiting_for_the_commit(ctx, db, tenant, redis):
    now = clock.now()
    later = now + timedelta(hours=1)
    with db.unit_of_work() as session:
        session.schedule(Job(now=now, **_effect(tenant, "timer", later, subject_type="task", subject_id=7)))
        assert cancel(session=session, now=now, subject_type="task", subject_id=7) == 1
    assert status_counts(db) == {"cancelled": 1}  # written once, cancelled, never left live


def test_a_savepoint_rolled_back_keeps_the_rows_scheduled_before_it(ctx, db, tenant, redis):
    now = clock.now()
    later = now + timedelta(hours=1)
    with db.unit_of_work() as session:
        session.schedule(Job(now=now, **_effect(tenant, "kept", later, subject_type="task", subject_id=8)))
        savepoint = session.begin_nested()
        cancel(session=session, now=now, subject_type="task", subject_id=9)  # writes the waiting row
        session.schedule(Job(now=now, **_effect(tenant, "dropped", later)))
        savepoint.rollback()  # takes the row it wrote and the one scheduled in it
    with db.unit_of_work() as session:
        rows = session.execute(sa.select(ScheduledJob.dedupe_key, ScheduledJob.status)).all()
    assert [tuple(row) for row in rows] == [("kept", "pending")]


def test_jobs_that_name_a_merge_are_written_as_it_makes_them_at_the_commit(ctx, db, tenant, redis):
    """A unit's new messages' shape: grouped at the commit, whatever the unit wrote early before it."""
    now = clock.now()

    def merged(key: str) -> Job:
        return Job(now=now, merge=_merged_row, **_effect(tenant, key, now))

    with db.unit_of_work() as session:
        session.schedule(merged("a"))
        session.schedule(Job(now=now, **_effect(tenant, "plain", now)))
        assert [row.dedupe_key for row in written(session)] == ["plain"]  # the merged ones wait
        session.schedule(merged("b"))
    with db.unit_of_work() as session:
        keys = sorted(session.scalars(sa.select(ScheduledJob.dedupe_key)))
    assert keys == ["a+b", "plain"]


def _merged_row(jobs: list[Job]) -> list[Job]:
    first = jobs[0]
    return [replace(first, dedupe_key="+".join(job.dedupe_key for job in jobs), merge=None)]
