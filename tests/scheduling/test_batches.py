"""Rows of a kind registered with `batch`: published together while due, they go out that many to a
message, whose delivery counts, claims and runs them in one transaction, each once. Real database
and Redis, no worker (run_job is called directly, as a worker's delivery would)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.platform import clock
from app.platform.app_db import get_db
from app.platform.scheduling import registry, run_job, runner
from app.platform.scheduling.models import ScheduledJob
from tests.ledger import effects, job, queued, queued_job_ids, schedule_many, status_counts
from tests.reliability.handlers import BATCH, DRAIN_BATCH, FINISHES, record_effect


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def add_many(db, tenant, n: int, *, prefix: str, due_in: float = 0.0, kind="test.batched", payloads=None):
    """n rows due `due_in` from now, in one unit of work (published together after its commit)."""
    now = clock.now()
    specs = [
        {
            "kind": kind,
            "due_at": now + timedelta(seconds=due_in),
            "dedupe_key": f"{prefix}:{i}",
            "clinic_id": tenant.id,
            "payload": (payloads or {}).get(i, {}),
        }
        for i in range(n)
    ]
    with db.unit_of_work() as session:
        return [row.id for row in schedule_many(session=session, jobs=specs, now=now)]


@contextmanager
def transactions_begun(db):
    """Counts the transactions begun on the app's engine meanwhile (autocommit statements too)."""
    begun = []

    def on_begin(connection):
        begun.append(connection)

    sa.event.listen(db.engine, "begin", on_begin)
    try:
        yield begun
    finally:
        sa.event.remove(db.engine, "begin", on_begin)


def deliver(db, ids: list[int], now=None) -> str:
    """One delivery of a batch's message: its first row, the others as its `batch`."""
    return run_job(db=db, job_id=ids[0], now=now or clock.now(), delivery=runner.Delivery(batch=ids[1:]))


def test_rows_due_together_go_out_that_many_to_a_message_and_rows_with_an_eta_alone(ctx, db, tenant, redis):
    due = add_many(db, tenant, 2 * BATCH + 5, prefix="due")
    later = add_many(db, tenant, 3, prefix="later", due_in=60)
    single = add_many(db, tenant, 2, prefix="single", kind="test.effect")
    messages = queued(redis)
    together = [m for m in messages if m["batch"]]
    assert sorted(1 + len(m["batch"]) for m in together) == [5, BATCH, BATCH]
    assert sorted(i for m in together for i in [m["job_id"], *m["batch"]]) == sorted(due)
    assert all(m["eta"] is None for m in together)
    alone = [m for m in messages if not m["batch"]]
    assert sorted(m["job_id"] for m in alone) == sorted(later + single)
    assert all(m["eta"] is not None for m in alone if m["job_id"] in later)


def test_a_batch_runs_in_one_transaction_each_row_done_once_with_its_effect(ctx, db, tenant, redis):
    ids = add_many(db, tenant, BATCH, prefix="one")
    with transactions_begun(db) as begun:
        assert deliver(db, ids) == "done"
    # One statement counts the attempts (committed on its own), one transaction claims and runs all.
    assert len(begun) == 2
    assert status_counts(db) == {"done": BATCH}
    assert effects(db) == (BATCH, BATCH)
    assert {job(db, i).attempts for i in ids} == {1}


def test_one_failing_handler_leaves_the_others_done_and_is_retried_with_backoff(
    ctx, app, db, tenant, redis, monkeypatch
):
    monkeypatch.setattr(app.config["SETTINGS"], "job_retry_base_seconds", 10.0)
    ids = add_many(db, tenant, BATCH, prefix="fail", payloads={7: {"fail_times": 1}})
    redis.flushdb()  # the batch's own message: delivered here by hand
    now = clock.now()
    outcomes = runner.run_batch(db=db, job_ids=ids, now=now)
    failed = ids[7]
    assert outcomes == {i: ("retrying" if i == failed else "done") for i in ids}
    row = job(db, failed)
    assert (row.status, row.attempts, row.last_error) == (
        "dispatched",
        1,
        "RuntimeError: batched failure on attempt 1",
    )
    assert now + timedelta(seconds=10) <= row.due_at <= now + timedelta(seconds=11)  # the backoff
    assert queued_job_ids(redis) == [failed]  # its retry, with the eta of its backoff
    assert status_counts(db) == {"done": BATCH - 1, "dispatched": 1}
    assert effects(db) == (BATCH - 1, BATCH - 1)  # the failed handler's effect rolled back
    assert {job(db, i).attempts for i in ids if i != failed} == {
        1
    }  # the others ran again alone, same attempt

    assert run_job(db=get_db(), job_id=failed, now=row.due_at) == "done"
    assert effects(db) == (BATCH, BATCH) and job(db, failed).attempts == 2


def test_a_second_delivery_of_a_batch_does_nothing(ctx, db, tenant, redis):
    ids = add_many(db, tenant, 5, prefix="twice")
    assert deliver(db, ids) == "done"
    assert runner.run_batch(db=db, job_ids=ids, now=clock.now()) == dict.fromkeys(ids, "skipped")
    assert effects(db) == (5, 5) and {job(db, i).attempts for i in ids} == {1}


def test_concurrent_deliveries_of_one_batch_take_effect_once(ctx, app, db, tenant, redis):
    ids = add_many(db, tenant, 10, prefix="race", payloads={i: {"sleep": 0.05} for i in range(10)})
    outcomes, start = [], threading.Barrier(3)

    def delivery():
        with app.app_context():
            start.wait()
            outcomes.append(runner.run_batch(db=get_db(), job_ids=ids, now=clock.now()))

    threads = [threading.Thread(target=delivery) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(outcomes) == 3
    for job_id in ids:  # each row ran in exactly one of the deliveries
        assert sorted(o[job_id] for o in outcomes) == ["done", "skipped", "skipped"]
    assert effects(db) == (10, 10) and {job(db, i).attempts for i in ids} == {1}


def test_rows_whose_batch_lost_its_worker_run_alone_on_their_next_attempt(ctx, app, db, tenant, redis):
    ids = add_many(db, tenant, 5, prefix="lost")
    grace = app.config["SETTINGS"].redispatch_grace_seconds
    with db.unit_of_work() as session:  # as a batch's delivery leaves them when its worker is killed
        session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.id.in_(ids))
            .values(attempts=1, started_at=clock.now() - timedelta(seconds=grace + 1))
        )
    with transactions_begun(db) as begun:
        assert runner.run_batch(db=db, job_ids=ids, now=clock.now()) == dict.fromkeys(ids, "done")
    assert len(begun) == 1 + 2 * len(ids)  # the batch's count finds none; each row: its count, its run
    assert effects(db) == (5, 5) and {job(db, i).attempts for i in ids} == {2}


def test_a_kind_that_sends_outside_its_transaction_cannot_run_in_batches(db):
    with pytest.raises(ValueError, match="batch must be 1"):
        registry.JobKinds(
            [registry.JobKind("test.not_batchable", record_effect, batch=2, sends_after_commit=True)]
        )
    with pytest.raises(ValueError, match="batch must be 1"):
        registry.JobKinds([registry.JobKind("test.not_batchable", record_effect, batch=0)])
    assert db.job_kinds.kind_of("test.not_batchable") is None
    with pytest.raises(ValueError, match="a kind run together sends nothing"):
        registry.JobKinds(
            [registry.JobKind("test.not_together", record_effect, together=True, sends_after_commit=True)]
        )


def test_a_drainer_runs_a_batched_kinds_due_rows_that_many_to_a_transaction(ctx, db, tenant, redis):
    """events.process and intelligence.rescore drain this way: the rows due at once run DRAIN_BATCH
    to a transaction, each once; a failing row backs off alone and the rest of its batch still run."""
    n = 10
    ids = add_many(
        db, tenant, n, prefix="drained", kind="test.drained_batched", payloads={5: {"fail_times": 1}}
    )
    with transactions_begun(db) as begun:
        ran = runner.drain(db=db, kind="test.drained_batched", clock=clock.now)
    assert ran == n - 1
    assert effects(db) == (n - 1, n - 1)  # each once; the failed row's effect rolled back
    failed = job(db, ids[5])
    assert failed.attempts == 1 and failed.status in ("pending", "dispatched") and failed.due_at > clock.now()
    assert {job(db, i).status for i in ids if i != ids[5]} == {"done"}
    # Three batches of a count and a run; the failed batch's failure recorded and its other three
    # rows run alone; a look for a batch before the wake-up flag is cleared and a last look for any
    # one row after it, and no look for rows due later (the kind's rows are due when written: not
    # `due_later`).
    batches = -(-n // DRAIN_BATCH)
    assert len(begun) == 2 * batches + 1 + (DRAIN_BATCH - 1) + 2
    assert len(begun) < 2 * n  # one row at a time: a count and a run each
    assert runner.run_job(db=db, job_id=ids[5], now=failed.due_at + timedelta(seconds=1)) == "done"
    assert effects(db) == (n, n)


def test_a_kind_run_together_is_called_once_for_all_the_rows_of_a_transaction(ctx, db, tenant, redis):
    """Re-scoring's shape: one call for a drainer's batch scores the leads of all its rows."""
    FINISHES.clear()
    ids = add_many(db, tenant, DRAIN_BATCH * 2, prefix="collected", kind="test.collected")
    assert runner.drain(db=db, kind="test.collected", clock=clock.now) == DRAIN_BATCH * 2
    assert FINISHES == [DRAIN_BATCH, DRAIN_BATCH]  # one call a transaction, for all its rows
    assert effects(db) == (len(ids), len(ids))
    assert status_counts(db) == {"done": len(ids)}


def test_a_batch_of_a_kind_run_together_that_fails_runs_its_rows_alone_and_the_culprit_backs_off(
    ctx, app, db, tenant, redis, monkeypatch
):
    monkeypatch.setattr(app.config["SETTINGS"], "job_retry_base_seconds", 10.0)
    FINISHES.clear()
    ids = add_many(
        db, tenant, DRAIN_BATCH, prefix="finish", kind="test.collected", payloads={2: {"finish_fails": 1}}
    )
    now = clock.now()
    assert runner.drain(db=db, kind="test.collected", clock=lambda: now) == DRAIN_BATCH - 1
    # The batch's call failed (rolled back whole), then each row alone: a call of its own.
    assert FINISHES == [DRAIN_BATCH, 1, 1, 1, 1]
    culprit = job(db, ids[2])
    assert (culprit.status, culprit.attempts, culprit.last_error) == (
        "dispatched",
        1,
        "RuntimeError: finish failed on attempt 1",
    )
    assert now + timedelta(seconds=10) <= culprit.due_at <= now + timedelta(seconds=11)  # its backoff
    assert effects(db) == (DRAIN_BATCH - 1, DRAIN_BATCH - 1)  # each other row once
    assert runner.run_job(db=db, job_id=ids[2], now=culprit.due_at) == "done"
    assert effects(db) == (DRAIN_BATCH, DRAIN_BATCH)
