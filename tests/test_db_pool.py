"""The connection pool survives a server that dropped its connections (restart, idle timeout), and
pings a pooled connection only when it sat idle or its server said something to it."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from app.platform.db import Frozen, autocommit, make_engine
from tests.requirements import need_postgres


def _kill_backend(engine: sa.Engine, pid: int) -> None:
    with engine.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.fixture
def postgresql_url(migrated_database):
    need_postgres(
        migrated_database, "terminating a server connection needs PostgreSQL (SQLite has no server)"
    )
    return migrated_database


def _count_pings(monkeypatch, engine: sa.Engine) -> list:
    """The round trips the engine's dialect makes to test a pooled connection, as they happen."""
    pings = []
    round_trip = engine.dialect.ping_server

    def counted(dbapi_connection):
        pings.append(dbapi_connection)
        return round_trip(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "ping_server", counted)
    return pings


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_dropped_while_idle_is_replaced_before_use(postgresql_url, monkeypatch):
    engine = make_engine(postgresql_url, ping_after_idle=0.0)  # every checkout counts as idle
    admin = make_engine(postgresql_url)
    pings = _count_pings(monkeypatch, engine)
    try:
        with engine.connect() as conn:
            first_pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        assert pings == []  # a connection made for this checkout is not tested
        _kill_backend(admin, first_pid)
        with engine.connect() as conn:  # the ping finds it dead; the pool connects anew
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != first_pid
        assert len(pings) == 1
    finally:
        engine.dispose()
        admin.dispose()


def _wait_until_gone(engine: sa.Engine, pid: int) -> None:
    """pg_terminate_backend only signals the backend: wait for it to have ended."""
    for _ in range(500):
        with engine.connect() as admin:
            alive = admin.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            if not alive.scalar_one():
                return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} still alive")


def test_a_connection_used_a_moment_ago_that_the_server_ended_is_replaced_before_use(
    postgresql_url, monkeypatch
):
    engine = make_engine(postgresql_url, ping_after_idle=3600.0)  # never idle long enough for a ping
    admin = make_engine(postgresql_url)
    pings = _count_pings(monkeypatch, engine)
    try:
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        _kill_backend(admin, pid)
        _wait_until_gone(admin, pid)
        # The server's goodbye waits on the pooled connection's socket: checked out, it is found
        # dead without a statement failing, and the pool connects anew.
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
        assert len(pings) == 1  # tested though used a moment ago: its socket had something to read
    finally:
        engine.dispose()
        admin.dispose()


def test_a_connection_checked_out_after_idling_is_pinged_and_one_used_a_moment_ago_is_not(
    postgresql_url, monkeypatch
):
    idling = make_engine(postgresql_url, ping_after_idle=0.0)  # every return counts as long ago
    busy = make_engine(postgresql_url, ping_after_idle=3600.0)  # every return counts as a moment ago
    idling_pings, busy_pings = _count_pings(monkeypatch, idling), _count_pings(monkeypatch, busy)
    try:
        for engine in (idling, busy):
            pids = {_backend_pid(engine) for _ in range(4)}
            assert len(pids) == 1  # one pooled connection served every checkout
            with engine.begin() as conn:  # a transaction committed, then the connection returned
                conn.execute(sa.text("SELECT 1"))
            _backend_pid(engine)
        assert len(idling_pings) == 5  # each of the six checkouts but the first (a new connection)
        assert busy_pings == []
    finally:
        idling.dispose()
        busy.dispose()


def _pids_of_two(engine: sa.Engine) -> set[int]:
    """The backends of two connections checked out at once."""
    with engine.connect() as first, engine.connect() as second:
        return {c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() for c in (first, second)}


def test_a_failed_ping_replaces_that_connection_only(postgresql_url):
    engine = make_engine(postgresql_url, ping_after_idle=0.0)
    admin = make_engine(postgresql_url)
    try:
        dead, alive = _pids_of_two(engine)  # two pooled connections
        _kill_backend(admin, dead)
        _wait_until_gone(admin, dead)
        # Twice: whichever of the two the pool hands out first, the live one outlasts the failure.
        for _ in range(2):
            pids = _pids_of_two(engine)
            assert dead not in pids
            assert alive in pids  # kept, not reconnected with the dead one
    finally:
        engine.dispose()
        admin.dispose()


def test_a_disconnect_on_the_fast_path_invalidates_the_connection(postgresql_url):
    engine = make_engine(postgresql_url, ping_after_idle=3600.0)
    admin = make_engine(postgresql_url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            _kill_backend(admin, pid)
            _wait_until_gone(admin, pid)
            with pytest.raises(sa.exc.OperationalError) as raised:
                Frozen(sa.select(sa.literal(1))).execute(conn)
            assert raised.value.connection_invalidated
            assert conn.invalidated  # not handed out again by the pool
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()
        admin.dispose()


def test_a_read_in_autocommit_whose_connection_was_dropped_is_read_again_on_a_new_one(postgresql_url):
    engine = make_engine(postgresql_url, ping_after_idle=3600.0)
    admin = make_engine(postgresql_url)
    backend_pid = Frozen(sa.select(sa.func.pg_backend_pid()))
    try:
        with autocommit(engine).connect() as conn:  # as a request's connection: held across statements
            [(pid,)] = backend_pid.execute(conn)
            _kill_backend(admin, pid)
            _wait_until_gone(admin, pid)
            [(again,)] = backend_pid.execute(conn)
            assert again != pid
            [(same,)] = backend_pid.execute(conn)  # the connection serves on
            assert same == again
    finally:
        engine.dispose()
        admin.dispose()
