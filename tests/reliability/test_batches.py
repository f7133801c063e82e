"""Rows that run in batches (a kind registered with `batch`) keep the ledger's guarantees: a worker
killed -9 in the middle of a batch, every batch's message delivered twice, Redis emptied (FLUSHDB of
the engine's database: all it keeps there; another run may share the server's other databases), failing
handlers and a row that kills its worker never lose or double an effect. Real `celery worker`
subprocesses, real Redis (and RabbitMQ where the broker fixture says), real database; every test
counts effect rows exactly."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.platform import clock
from app.platform.scheduling.dispatch import messages_for
from app.platform.scheduling.models import ScheduledJob
from tests.ledger import effects, job, status_counts
from tests.reliability.conftest import FAST, WORKER_ENV, sweeping
from tests.reliability.handlers import BATCH
from tests.reliability.test_faults import add_jobs, add_jobs_without_dispatch, specs, wait_all_done
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

pytestmark = pytest.mark.reliability


def batched(tenant, n: int, *, prefix: str, payloads=None):
    """n rows of the batched test kind, due now: published together, BATCH to a message."""
    jobs = specs(tenant, n, first_due=clock.now(), prefix=prefix, kind="test.batched")
    for i, payload in (payloads or {}).items():
        jobs[i]["payload"] = payload
    return jobs


def in_flight(db) -> int:
    """Rows whose attempt was counted and whose run has not committed."""
    with db.unit_of_work() as session:
        return session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledJob)
            .where(ScheduledJob.status != "done", ScheduledJob.attempts > 0)
        )


def test_a_worker_killed_in_the_middle_of_a_batch_leaves_each_row_to_run_once(broker, tenant, tmp_path):
    app, db = broker.app, broker.db
    settings = app.config["SETTINGS"]
    # Row 300's first attempt holds its batch's transaction open for 10 s: the kill lands inside it.
    stalled, marker = 300, tmp_path / "stalled"
    with subprocess_worker(settings, name="doomed", **WORKER_ENV) as doomed:
        wait_until_consuming(app, "doomed")
        payloads = {stalled: {"stall": 10, "stalled": str(marker)}}
        add_jobs(app, db, batched(tenant, 1000, prefix="k9b", payloads=payloads))
        wait_for(marker.exists, timeout=60, interval=0.02)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    done_at_kill = status_counts(db).get("done", 0)
    assert 0 < done_at_kill < 1000 and done_at_kill % BATCH == 0, done_at_kill  # whole batches only
    assert in_flight(db) >= BATCH  # the stalled batch's rows: counted, their effects gone with the kill

    with subprocess_worker(settings, name="rescuer", **WORKER_ENV), sweeping(app):
        wait_all_done(db, 1000, timeout=180)
    assert effects(db) == (1000, 1000)


def test_every_batch_message_delivered_twice_to_two_workers_takes_effect_once(app, db, redis, tenant, fast):
    settings, dispatcher = app.config["SETTINGS"], app.extensions["followup.dispatcher"]
    ids = add_jobs_without_dispatch(app, db, batched(tenant, 500, prefix="twice"))
    with db.unit_of_work() as session:
        rows = session.scalars(sa.select(ScheduledJob).order_by(ScheduledJob.id)).all()
    messages = messages_for(rows, clock.now(), db.job_kinds)
    assert len(messages) == 500 // BATCH  # every row in a batch's message
    with (
        subprocess_worker(settings, name="twin1", **WORKER_ENV),
        subprocess_worker(settings, name="twin2", **WORKER_ENV),
    ):
        wait_until_consuming(app, "twin1")
        wait_until_consuming(app, "twin2")
        dispatcher.publish(messages + messages)  # each batch's message, and its twin
        wait_all_done(db, 500, timeout=60)
        wait_for(lambda: redis.llen("realtime") == 0 and redis.hlen("unacked") == 0, timeout=30)
    assert effects(db) == (500, 500)
    assert {job(db, i).attempts for i in ids} == {1}


def test_flushall_with_1000_batched_rows_dispatched_runs_each_once_after_the_grace(
    app, db, redis, tenant, fast
):
    settings = app.config["SETTINGS"]
    add_jobs(app, db, batched(tenant, 1000, prefix="flushb"))
    assert status_counts(db) == {"dispatched": 1000} and redis.llen("realtime") == 1000 // BATCH
    redis.flushdb()
    with subprocess_worker(settings, name="after-flush", **WORKER_ENV), sweeping(app):
        wait_all_done(db, 1000, timeout=90)
    assert effects(db) == (1000, 1000)
    with db.unit_of_work() as session:  # only the redispatch sweep, after the grace, could have run them
        times = session.execute(sa.select(ScheduledJob.due_at, ScheduledJob.finished_at)).all()
    assert min(finished - due for due, finished in times) >= timedelta(
        seconds=FAST["redispatch_grace_seconds"]
    )


def test_failing_handlers_in_a_batch_back_off_alone_and_the_others_commit(app, db, redis, tenant, fast):
    settings = app.config["SETTINGS"]
    flaky, doomed = [3, 8, 15], 11
    payloads = {i: {"fail_times": 1} for i in flaky} | {doomed: {"fail_times": 99}}
    with subprocess_worker(settings, name="retrier", **WORKER_ENV), sweeping(app):
        wait_until_consuming(app, "retrier")
        ids = add_jobs(app, db, batched(tenant, BATCH, prefix="failing", payloads=payloads))
        wait_for(lambda: status_counts(db) == {"done": BATCH - 1, "dead": 1}, timeout=60, interval=0.1)
    assert [job(db, ids[i]).attempts for i in flaky] == [2, 2, 2]
    assert (job(db, ids[doomed]).attempts, job(db, ids[doomed]).last_error) == (
        fast.job_max_attempts,
        "RuntimeError: batched failure on attempt 3",
    )
    assert {job(db, i).attempts for n, i in enumerate(ids) if n not in (*flaky, doomed)} == {1}
    assert effects(db) == (BATCH - 1, BATCH - 1)  # no failed attempt's effect survived


def test_a_row_that_kills_its_worker_mid_batch_ends_dead_and_the_others_run_once(
    app, db, redis, tenant, fast
):
    settings = app.config["SETTINGS"]
    redis.flushdb()
    poison = 5
    with subprocess_worker(settings, name="victim", **WORKER_ENV), sweeping(app):
        wait_until_consuming(app, "victim")
        ids = add_jobs(app, db, batched(tenant, BATCH, prefix="poisonb", payloads={poison: {"poison": True}}))
        wait_for(lambda: status_counts(db) == {"done": BATCH - 1, "dead": 1}, timeout=90, interval=0.2)
    assert job(db, ids[poison]).attempts == fast.job_max_attempts
    # The batch's first attempt died with the poison; from then on each row ran alone, once.
    assert {job(db, i).attempts for n, i in enumerate(ids) if n != poison} <= {1, 2}
    assert effects(db) == (BATCH - 1, BATCH - 1)


def test_a_worker_killed_in_the_middle_of_a_drained_batch_leaves_each_row_to_run_once(
    broker, tenant, tmp_path
):
    """A draining kind with `batch` (events.process, intelligence.rescore): its drainer runs due rows
    DRAIN_BATCH to a transaction (tests/reliability/handlers.py); killed inside one, the batch's
    rows were counted but none took effect, and each runs once after the grace, alone."""
    app, db = broker.app, broker.db
    settings = app.config["SETTINGS"]
    stalled, marker = 150, tmp_path / "stalled"
    jobs = specs(tenant, 400, first_due=clock.now(), prefix="k9d", kind="test.drained_batched")
    jobs[stalled]["payload"] = {"stall": 10, "stalled": str(marker)}
    with subprocess_worker(settings, name="doomed", **WORKER_ENV) as doomed:
        wait_until_consuming(app, "doomed")
        add_jobs(app, db, jobs)
        wait_for(marker.exists, timeout=60, interval=0.02)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    assert status_counts(db).get("done", 0) < 400
    assert in_flight(db) >= 1  # the stalled batch: counted, its effects gone with the kill
    assert effects(db)[0] == status_counts(db).get("done", 0)  # only committed batches took effect
    with subprocess_worker(settings, name="rescuer", **WORKER_ENV), sweeping(app):
        wait_all_done(db, 400, timeout=180)
    assert effects(db) == (400, 400)
