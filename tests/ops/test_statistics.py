"""The statistics sweep: tables whose rows changed since their last ANALYZE are analysed by the app
itself, whatever the server's autovacuum settings (a database just migrated has no statistics)."""

from __future__ import annotations

import sqlalchemy as sa

from app import clock
from app.ops import service
from tests.workers import wait_for

ROWS = 300


def _add_heartbeats(db, prefix: str) -> None:
    with db.unit_of_work() as session:
        for i in range(ROWS):
            service.record_heartbeat(session=session, name=f"{prefix}{i}", now=clock.now())


def _counters(db) -> tuple[int, float]:
    """heartbeats' rows changed since its last ANALYZE, and the row count the planner believes."""
    with db.engine.connect() as conn:
        changed = conn.execute(
            sa.text("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'heartbeats'")
        ).scalar()
        planned = conn.execute(
            sa.text("SELECT reltuples FROM pg_class WHERE relname = 'heartbeats'")
        ).scalar()
    return changed, planned


def test_a_table_that_changed_is_analysed_once_then_left_alone(db):
    if db.dialect != "postgresql":
        _add_heartbeats(db, "sqlite")
        assert service.refresh_statistics(db=db) == []  # SQLite plans without them
        return
    _add_heartbeats(db, "stats")
    wait_for(lambda: _counters(db)[0] >= ROWS, timeout=10)  # the server's counters lag a little
    assert "heartbeats" in service.refresh_statistics(db=db)
    changed, planned = _counters(db)
    assert changed == 0
    assert planned >= ROWS  # the planner now sees the rows, not an empty table
    assert "heartbeats" not in service.refresh_statistics(db=db)


def test_the_sweep_runs_through_a_worker_on_the_sweeps_queue(celery_app, celery_worker, db):
    if db.dialect != "postgresql":
        return
    _add_heartbeats(db, "swept")
    wait_for(lambda: _counters(db)[0] >= ROWS, timeout=10)
    celery_app.send_task("ops.refresh_statistics", queue="sweeps")
    wait_for(lambda: _counters(db)[0] == 0, timeout=30)
    assert _counters(db)[1] >= ROWS


def test_an_analysed_table_is_analysed_again_once_its_rows_doubled(db):
    """Not every 10% change (each ANALYZE makes every backend plan the table's statements again)."""
    if db.dialect != "postgresql":
        return
    _add_heartbeats(db, "first")
    wait_for(lambda: _counters(db)[0] >= ROWS, timeout=10)
    assert "heartbeats" in service.refresh_statistics(db=db)
    with db.unit_of_work() as session:  # half as many again: planned well enough as it is
        for i in range(ROWS // 2):
            service.record_heartbeat(session=session, name=f"half{i}", now=clock.now())
    wait_for(lambda: _counters(db)[0] >= ROWS // 2, timeout=10)
    assert "heartbeats" not in service.refresh_statistics(db=db)
    _add_heartbeats(db, "again")  # now more rows changed than 50 + the rows it had
    wait_for(lambda: _counters(db)[0] >= ROWS + ROWS // 2, timeout=10)
    assert "heartbeats" in service.refresh_statistics(db=db)
    assert _counters(db)[1] >= 2 * ROWS
