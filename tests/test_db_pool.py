"""The connection pool survives a server that dropped its connections (restart, idle timeout)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.db import make_engine


def _kill_backend(engine: sa.Engine, pid: int) -> None:
    with engine.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.fixture
def postgresql_url(migrated_database):
    if not migrated_database.startswith("postgresql"):
        pytest.skip("terminating a server connection needs PostgreSQL (SQLite has no server)")
    return migrated_database


def test_a_connection_dropped_while_idle_is_replaced_before_use(postgresql_url):
    engine = make_engine(postgresql_url, ping_after_idle=0.0)  # every checkout counts as idle
    admin = make_engine(postgresql_url)
    try:
        with engine.connect() as conn:
            first_pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        _kill_backend(admin, first_pid)
        with engine.connect() as conn:  # the ping finds it dead; the pool connects anew
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != first_pid
    finally:
        engine.dispose()
        admin.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(postgresql_url):
    engine = make_engine(postgresql_url, ping_after_idle=3600.0)
    admin = make_engine(postgresql_url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        _kill_backend(admin, pid)
        # No ping within the idle window: the dead connection surfaces as a disconnect, and
        # SQLAlchemy invalidates the pool so that the next checkout connects anew.
        with pytest.raises(sa.exc.OperationalError) as raised, engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        assert raised.value.connection_invalidated
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
        admin.dispose()
