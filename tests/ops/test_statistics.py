"""The statistics sweep: tables whose rows changed since their last ANALYZE are analysed by the app
itself, whatever the server's autovacuum settings (a database just migrated has no statistics)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.domains.ops import service
from app.platform import clock
from tests.workers import wait_for

pytestmark = pytest.mark.usefixtures("fresh_heartbeats")

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


def _analyses(db) -> int:
    """How many ANALYZE statements heartbeats has had (autovacuum's own are counted apart)."""
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'heartbeats'")
        ).scalar()


def test_a_table_that_changed_is_analysed_once_then_left_alone(db):
    if db.dialect != "postgresql":
        _add_heartbeats(db, "sqlite")
        assert service.refresh_statistics(db=db) == []  # SQLite plans without them
        return
    _add_heartbeats(db, "stats")
    wait_for(lambda: _counters(db)[0] >= ROWS, timeout=30)  # the server's counters lag, more on a busy host
    assert "heartbeats" in service.refresh_statistics(db=db)
    changed, planned = _counters(db)
    assert changed == 0
    assert planned >= ROWS  # the planner now sees the rows, not an empty table
    assert "heartbeats" not in service.refresh_statistics(db=db)


def test_the_sweep_runs_through_a_worker_on_the_sweeps_queue(celery_app, celery_worker, db):
    if db.dialect != "postgresql":
        return
    _add_heartbeats(db, "swept")
    wait_for(lambda: _counters(db)[0] >= ROWS, timeout=30)  # the statistics arrive late on a busy host
    analysed = _analyses(db)
    celery_app.send_task("ops.refresh_statistics", queue="sweeps")
    wait_for(lambda: _analyses(db) > analysed, timeout=30)
    # Not "no change since": the worker records the sweep's run in heartbeats right after the
    # ANALYZE (workers/celery_app.py), a change the server counts once that connection reports it,
    # within milliseconds or seconds. What the ANALYZE must have cleared is the rows it swept.
    changed, planned = _counters(db)
    assert changed < ROWS
    assert planned >= ROWS  # the planner now sees the rows


def test_an_analysed_table_is_analysed_again_once_its_rows_doubled(db):
    """Not every 10% change (each ANALYZE makes every backend plan the table's statements again)."""
    if db.dialect != "postgresql":
        return
    _add_heartbeats(db, "first")
    wait_for(lambda: _counters(db)[0] >= ROWS, timeout=30)  # the statistics arrive late on a busy host
    assert "heartbeats" in service.refresh_statistics(db=db)
    with db.unit_of_work() as session:  # half as many again: planned well enough as it is
        for i in range(ROWS // 2):
            service.record_heartbeat(session=session, name=f"half{i}", now=clock.now())
    wait_for(lambda: _counters(db)[0] >= ROWS // 2, timeout=30)
    assert "heartbeats" not in service.refresh_statistics(db=db)
    _add_heartbeats(db, "again")  # now more rows changed than 50 + the rows it had
    wait_for(lambda: _counters(db)[0] >= ROWS + ROWS // 2, timeout=30)
    assert "heartbeats" in service.refresh_statistics(db=db)
    assert _counters(db)[1] >= 2 * ROWS


def _histogram_bounds(db) -> int:
    """How many bounds the planner's histogram of heartbeats.name has (the statistics target + 1 at
    most: the sample ANALYZE took)."""
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT array_length(histogram_bounds::text::text[], 1) FROM pg_stats "
                "WHERE tablename = 'heartbeats' AND attname = 'name'"
            )
        ).scalar()


def test_the_sweep_samples_by_its_own_target_and_hands_the_connection_back_as_it_was(db):
    """A smaller sample than the server's default (100) costs a fifth of the CPU; the session's
    settings must not stay on a pooled connection that serves the app's own statements next."""
    if db.dialect != "postgresql":
        return
    _add_heartbeats(db, "sample")  # 300 distinct names: a histogram of up to 101 bounds at 100
    wait_for(lambda: _counters(db)[0] >= ROWS, timeout=30)  # the statistics arrive late on a busy host
    assert db.settings.statistics_target == 30
    assert "heartbeats" in service.refresh_statistics(db=db)
    assert _histogram_bounds(db) == db.settings.statistics_target + 1
    with db.single_statement() as conn:  # the pool's connection the sweep used
        assert conn.exec_driver_sql("SHOW default_statistics_target").scalar() == "100"
        assert conn.exec_driver_sql("SHOW vacuum_cost_delay").scalar() == "0"
