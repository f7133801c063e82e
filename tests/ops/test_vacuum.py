"""The dead-rows sweep: tables whose updates left many dead row versions are vacuumed by the app
itself, whatever the server's autovacuum settings (the ledger and the events are updated as they
run; the realtime path finds its rows through indexes that keep an entry for each dead version)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.domains.ops import service
from app.platform import clock
from tests.workers import wait_for

pytestmark = pytest.mark.usefixtures("fresh_heartbeats")

ROWS = 1500  # updated once each: 1,500 dead versions, past the floor of 1,000 + 5% of the rows


def _heartbeats(db, count: int, prefix: str = "beat") -> None:
    with db.unit_of_work() as session:
        for i in range(count):
            service.record_heartbeat(session=session, name=f"{prefix}{i}", now=clock.now())


def _dead(db) -> int:
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'heartbeats'")
        ).scalar()


def test_a_table_with_many_dead_rows_is_vacuumed_once_then_left_alone(db):
    _heartbeats(db, ROWS)
    _heartbeats(db, ROWS)  # each row again: its first version is now dead
    if db.dialect != "postgresql":
        assert service.vacuum_dead_rows(db=db) == []  # SQLite: nothing of the kind to do
        return
    wait_for(
        lambda: _dead(db) >= ROWS, timeout=30
    )  # the statistics arrive late on a busy host  # the server's counters lag a little
    assert "heartbeats" in service.vacuum_dead_rows(db=db)
    assert _dead(db) < ROWS // 10
    assert "heartbeats" not in service.vacuum_dead_rows(db=db)


def test_a_few_dead_rows_are_left_to_the_next_sweep(db):
    if db.dialect != "postgresql":
        return
    _heartbeats(db, 500)
    _heartbeats(db, 500)
    wait_for(lambda: _dead(db) >= 500, timeout=30)
    assert "heartbeats" not in service.vacuum_dead_rows(db=db)  # 500 dead: under the floor
    assert _dead(db) >= 500


def test_the_sweep_runs_through_a_worker_on_the_sweeps_queue(celery_app, celery_worker, db):
    if db.dialect != "postgresql":
        return
    _heartbeats(db, ROWS, prefix="swept")
    _heartbeats(db, ROWS, prefix="swept")
    wait_for(lambda: _dead(db) >= ROWS, timeout=30)  # the statistics arrive late on a busy host
    celery_app.send_task("ops.vacuum_dead_rows", queue="sweeps")
    wait_for(lambda: _dead(db) < ROWS // 10, timeout=30)
