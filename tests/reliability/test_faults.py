"""The ledger is the truth, Redis the transport: kill -9, FLUSHALL, double delivery, two beats, lost
dispatches and failing handlers never lose or double an effect. Real Redis, real worker and beat
processes, real database; every test counts effect rows exactly."""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.platform import clock
from app.platform.scheduling.dispatch import Message
from app.platform.scheduling.models import PENDING, ScheduledJob
from tests.brokers import TcpProxy
from tests.ledger import effects, job, schedule, schedule_many, status_counts
from tests.reliability.conftest import FAST, WORKER_ENV, sweeping
from tests.workers import subprocess_beat, subprocess_worker, wait_for, wait_until_consuming

pytestmark = pytest.mark.reliability

QUEUES = ("realtime", "notifications", "bulk")


def specs(tenant, n: int, *, first_due, spread: float = 0.0, prefix: str, kind: str = "test.effect", **extra):
    """n jobs due from `first_due` over `spread` seconds."""
    return [
        {
            "kind": kind,
            "due_at": first_due + timedelta(seconds=spread * i / max(n - 1, 1)),
            "dedupe_key": f"{prefix}:{i}",
            "clinic_id": tenant.id,
            **extra,
        }
        for i in range(n)
    ]


def add_jobs(app, db, jobs, *, now=None) -> list[int]:
    """Schedule in one unit of work: committed, then dispatched after commit as in production."""
    now = now or clock.now()
    with app.app_context(), db.unit_of_work() as session:
        return [j.id for j in schedule_many(session=session, jobs=jobs, now=now)]


def add_jobs_without_dispatch(app, db, jobs, *, publish_failed: bool = False) -> list[int]:
    """Commit the rows but skip the after-commit dispatch: the process 'crashed' right after commit
    (rows due within the horizon were stored dispatched: the redispatch sweep's, after its grace;
    the others pending: the promote sweep's).

    publish_failed: the publish failed and handed the rows back to pending (the promote sweep's).
    """
    now = clock.now()
    with app.app_context():
        session = db.new_unit()
        try:
            ids = [j.id for j in schedule_many(session=session, jobs=jobs, now=now)]
            if publish_failed:
                session.execute(
                    sa.update(ScheduledJob)
                    .where(ScheduledJob.id.in_(ids))
                    .values(status=PENDING, dispatched_at=None)
                )
            session.write()
            session.session.commit()  # the Session's commit, not the unit's, which publishes
        finally:
            session.close()
    return ids


def all_done(db, total: int):
    return lambda: status_counts(db) == {"done": total}


def wait_all_done(db, total: int, timeout: float) -> None:
    """Wait until every job is done; if they are not in time, fail showing the counts by status."""
    try:
        wait_for(all_done(db, total), timeout=timeout, interval=0.2)
    except AssertionError:
        assert status_counts(db) == {"done": total}


def broker_is_empty(redis) -> bool:
    return all(redis.llen(q) == 0 for q in QUEUES) and redis.hlen("unacked") == 0


def test_kill_9_of_a_worker_mid_run_over_1000_jobs_loses_and_doubles_nothing(broker, tenant):
    app, db = broker.app, broker.db
    settings = app.config["SETTINGS"]
    # Each effect takes a few ms so the kill lands mid-run: some done, one likely mid-transaction.
    with subprocess_worker(
        settings, name="doomed", FOLLOWUP_TEST_HANDLER_SLEEP="0.004", **WORKER_ENV
    ) as doomed:
        wait_until_consuming(app, "doomed")
        now = clock.now()
        ids = add_jobs(
            app, db, specs(tenant, 1000, first_due=now + timedelta(seconds=3), spread=2, prefix="k9")
        )
        wait_for(lambda: status_counts(db).get("done", 0) >= 100, timeout=30, interval=0.02)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    done_at_kill = status_counts(db).get("done", 0)
    assert 100 <= done_at_kill < 1000, done_at_kill
    if broker.name == "redis":
        # What the dead worker held (its prefetched and running messages) is stranded in Redis'
        # unacked hash until the visibility timeout: the redispatch sweep resends those jobs.
        assert app.extensions["followup.redis"].hlen("unacked") > 0
    # (RabbitMQ gives a dead consumer's unacknowledged messages back at once; the claim makes any
    # job that had committed a no-op on its second run.)

    with subprocess_worker(settings, name="rescuer", **WORKER_ENV), sweeping(app):
        wait_all_done(db, 1000, timeout=180)
    assert effects(db) == (1000, 1000)
    assert len(ids) == 1000


def test_every_message_delivered_twice_to_two_workers_takes_effect_once(broker, tenant):
    app, db = broker.app, broker.db
    settings, dispatcher = app.config["SETTINGS"], app.extensions["followup.dispatcher"]
    with (
        subprocess_worker(settings, name="twin1", **WORKER_ENV),
        subprocess_worker(settings, name="twin2", **WORKER_ENV),
    ):
        wait_until_consuming(app, "twin1")
        wait_until_consuming(app, "twin2")
        now = clock.now()
        jobs = specs(tenant, 500, first_due=now + timedelta(seconds=2), spread=1, prefix="twice")
        ids = add_jobs(app, db, jobs, now=now)
        # The second copy of every message, each due at the same instant as the first.
        dispatcher.publish(
            [Message(job_id, "realtime", spec["due_at"]) for job_id, spec in zip(ids, jobs, strict=True)]
        )
        wait_for(all_done(db, 500), timeout=60, interval=0.2)
        wait_for(broker.idle, timeout=30)  # both copies of each were consumed
    assert effects(db) == (500, 500)
    assert {job(db, i).attempts for i in ids[:20]} == {1}


# On Redis the same worker rides out a restart that empties the broker: test_broker_restart.py.
@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
def test_a_broker_outage_mid_run_loses_and_doubles_nothing(broker, tenant):
    """The worker reaches the broker through a TCP proxy; stopping it drops the worker's connections
    mid-run (as a broker restart would) while jobs keep being published; then the broker is back
    and the same worker process reconnects and finishes: every job once."""
    app, db = broker.app, broker.db
    settings = app.config["SETTINGS"]
    proxy = TcpProxy(broker.address()).start()
    try:
        with (
            subprocess_worker(
                settings,
                name="cutoff",
                CELERY_BROKER_URL=broker.via(proxy),
                FOLLOWUP_TEST_HANDLER_SLEEP="0.005",
                **WORKER_ENV,
            ),
            sweeping(app),
        ):
            wait_until_consuming(app, "cutoff")
            now = clock.now()
            add_jobs(
                app, db, specs(tenant, 200, first_due=now + timedelta(seconds=1), spread=2, prefix="pre")
            )
            wait_for(lambda: status_counts(db).get("done", 0) >= 20, timeout=60, interval=0.02)
            proxy.stop()  # the broker is gone for the worker, mid-run
            during = clock.now()
            add_jobs(app, db, specs(tenant, 100, first_due=during, spread=1, prefix="during"))
            time.sleep(2)  # the outage lasts a while: the worker is retrying its connection
            done_in_outage = status_counts(db).get("done", 0)
            assert done_in_outage < 300
            proxy.start()  # back: the worker reconnects and consumes again
            wait_all_done(db, 300, timeout=180)
    finally:
        proxy.stop()
    assert effects(db) == (300, 300)


def test_a_rolled_back_transaction_schedules_nothing_and_a_lost_dispatch_runs_through_the_sweep(
    app, db, redis, tenant, fast
):
    settings = app.config["SETTINGS"]
    now = clock.now()
    with pytest.raises(RuntimeError), app.app_context(), db.unit_of_work() as session:
        for i in range(10):
            schedule(
                session=session,
                kind="test.effect",
                due_at=now,
                dedupe_key=f"rb{i}",
                now=now,
                clinic_id=tenant.id,
            )
        raise RuntimeError("the use case failed after scheduling")
    assert status_counts(db) == {}
    assert broker_is_empty(redis)

    lost = add_jobs_without_dispatch(app, db, specs(tenant, 20, first_due=now, prefix="lost"))
    assert status_counts(db) == {"dispatched": 20} and broker_is_empty(redis)
    with subprocess_worker(settings, name="solo", **WORKER_ENV):
        wait_until_consuming(app, "solo")
        time.sleep(1)
        assert status_counts(db) == {"dispatched": 20}  # nothing runs them but the sweep
        with sweeping(app):
            wait_for(all_done(db, 20), timeout=30)
    assert effects(db) == (20, 20) and len(lost) == 20


def test_flushall_with_1000_dispatched_jobs_runs_each_once_after_the_grace(app, db, redis, tenant, fast):
    settings = app.config["SETTINGS"]
    now = clock.now()
    add_jobs(app, db, specs(tenant, 1000, first_due=now + timedelta(seconds=1), spread=1, prefix="flush"))
    assert status_counts(db) == {"dispatched": 1000} and redis.llen("realtime") == 1000
    redis.flushdb()
    assert redis.dbsize() == 0
    with subprocess_worker(settings, name="after-flush", **WORKER_ENV), sweeping(app):
        wait_for(all_done(db, 1000), timeout=90, interval=0.2)
    assert effects(db) == (1000, 1000)
    with db.unit_of_work() as session:  # only the redispatch sweep, after the grace, could have run them
        times = session.execute(sa.select(ScheduledJob.due_at, ScheduledJob.finished_at)).all()
    assert min(finished - due for due, finished in times) >= timedelta(
        seconds=FAST["redispatch_grace_seconds"]
    )


def test_two_beats_at_once_double_nothing(app, db, redis, tenant, fast, tmp_path):
    """Two real beat processes, 1 s intervals, for 20 s while jobs keep coming (20 s is 20 rounds of
    each sweep from each beat, enough to overlap them many times; a minute would only repeat it)."""
    settings = app.config["SETTINGS"]
    logs = [tmp_path / "beat1.log", tmp_path / "beat2.log"]
    rng = random.Random(7)
    expected = 0
    with (
        subprocess_worker(settings, name="beaten", concurrency=2, **WORKER_ENV),
        subprocess_beat(settings, schedule_file=tmp_path / "beat1", log_file=logs[0], **WORKER_ENV),
        subprocess_beat(settings, schedule_file=tmp_path / "beat2", log_file=logs[1], **WORKER_ENV),
    ):
        wait_until_consuming(app, "beaten")
        deadline = time.monotonic() + 20
        round_ = 0
        while time.monotonic() < deadline:
            now = clock.now()
            # Due within 0 to 10 s: about half lie beyond the 5 s horizon and wait for a promote sweep.
            batch = [
                {
                    "kind": "test.effect",
                    "due_at": now + timedelta(seconds=rng.uniform(0, 10)),
                    "dedupe_key": f"beats:{round_}:{i}",
                    "clinic_id": tenant.id,
                }
                for i in range(15)
            ]
            if round_ % 4 == 1:
                add_jobs_without_dispatch(app, db, batch)  # committed, never published: redispatch
            elif round_ % 4 == 3:
                add_jobs_without_dispatch(app, db, batch, publish_failed=True)  # back to pending: promote
            else:
                add_jobs(app, db, batch, now=now)
            expected += len(batch)
            round_ += 1
            time.sleep(0.5)
        wait_for(all_done(db, expected), timeout=60, interval=0.2)
        for log in logs:  # both beats really were sending the sweeps all along
            text = log.read_text()
            assert text.count("scheduling-promote-due") >= 15, text[-2000:]
            assert text.count("scheduling-redispatch-stale") >= 15, text[-2000:]
    assert effects(db) == (expected, expected)


def test_a_handler_failing_twice_then_succeeding_and_one_always_failing(app, db, redis, tenant, fast):
    settings = app.config["SETTINGS"]
    now = clock.now()
    with subprocess_worker(settings, name="retrier", **WORKER_ENV), sweeping(app):
        wait_until_consuming(app, "retrier")
        [flaky] = add_jobs(app, db, specs(tenant, 1, first_due=now, prefix="flaky", kind="test.flaky"))
        [doomed] = add_jobs(app, db, specs(tenant, 1, first_due=now, prefix="fails", kind="test.fails"))
        wait_for(lambda: status_counts(db) == {"done": 1, "dead": 1}, timeout=30, interval=0.1)
    ok, bad = job(db, flaky), job(db, doomed)
    assert (ok.status, ok.attempts) == ("done", 3)
    assert "flaky failure on attempt 2" in ok.last_error  # the last failure before it worked
    assert (bad.status, bad.attempts, bad.last_error) == ("dead", 3, "RuntimeError: the provider said no")
    assert effects(db) == (1, 1)  # the failed attempts' effects rolled back
