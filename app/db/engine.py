"""Engines: SQLite set up for several writing processes, PostgreSQL pinged only after idling."""

from __future__ import annotations

import functools
import select
import time

import psycopg
import sqlalchemy as sa
from sqlalchemy import event


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL + busy timeout + BEGIN IMMEDIATE: web, worker and beat write at once without 'locked'."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let us emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A deferred transaction that later writes can fail at once with SQLITE_BUSY instead of
        # waiting; taking the write lock up front makes the busy timeout apply.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, ping_after_idle: float = 5.0) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    # hide_parameters: a failed statement's error (logged, and in tracebacks) shows the SQL without
    # its bound values, which are names, phone numbers and notes (PHI).
    engine = sa.create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        hide_parameters=True,
        connect_args={"cursor_factory": PlainDescriptionCursor},
    )
    _ping_when_idle(engine, ping_after_idle)
    return engine


class PlainDescriptionCursor(psycopg.Cursor):
    """psycopg's cursor whose `description` is plain DB-API 7-tuples (name, type oid, and five
    None) instead of psycopg's `Column` objects.

    Why: psycopg builds `description` anew on every access, a `Column` per column, each looking up
    its type's information for sizes and precision nobody here reads. SQLAlchemy reads the name and
    type oid of every column of every result, so a worker's job (RETURNING * of a task, a lead's 60
    columns) spent about a tenth of its Python time building them (bench/automation_profile).
    """

    @property
    def description(self):
        result = self.pgresult
        if result is None or not result.nfields:
            return super().description  # no result, or one without columns: psycopg's own answer
        names = [result.fname(i) for i in range(result.nfields)]
        if None in names:  # a COPY's columns have no names: psycopg's own answer
            return super().description
        encoding = self.connection.info.encoding
        return [
            (name.decode(encoding), result.ftype(i), None, None, None, None, None)
            for i, name in enumerate(names)
        ]


def _ping_when_idle(engine: sa.Engine, idle_seconds: float) -> None:
    """Test a pooled connection before use if it sat idle, or if the server said something to it
    while it sat in the pool: a restarted or idle-killed server, or one that ended every session
    (a failover, `pg_terminate_backend`), shows up as a dead connection there, and the pool then
    connects anew.

    Why not `pool_pre_ping`: it pings on every checkout, a round trip per transaction, and a busy
    web process checks out a connection per transaction (two per request). One used a moment ago
    is alive unless its socket has something to read: an idle session is sent nothing but its
    server's goodbye (the FATAL message, then the close), which a zero-timeout poll sees without a
    round trip. A disconnect during use invalidates the connection (`is_disconnect`).
    """

    @event.listens_for(engine, "checkin")
    def _stamp(dbapi_connection, record):
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy):
        idle = time.monotonic() - record.info.get("checked_in_at", 0.0) >= idle_seconds
        if not idle and not _has_input(dbapi_connection):
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()  # end the transaction the driver opened for it
        except Exception as error:
            raise sa.exc.DisconnectionError() from error  # the pool retries with a new connection


def _has_input(dbapi_connection) -> bool:
    """Whether the server sent this idle connection anything (or closed it): no round trip."""
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True  # no socket left: closed
    return bool(readable)


def is_disconnect(connection: sa.Connection, error: psycopg.Error) -> bool:
    """Whether a driver error raised outside SQLAlchemy's execution (a raw cursor) means that the
    connection is gone; if so, it is invalidated, as SQLAlchemy does for its own statements, so
    that the pool does not hand it out again."""
    if not connection.dialect.is_disconnect(error, connection.connection.dbapi_connection, None):
        return False
    connection.invalidate(error)
    return True


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot be used now (unreachable, or it dropped the
    connection), rather than that the statement was wrong: worth trying again in a moment."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    if not isinstance(error, sa.exc.OperationalError):
        return False
    original = error.orig
    if isinstance(original, psycopg.Error):
        state = original.sqlstate or ""
        # No SQLSTATE: the driver's own (could not connect, connection lost); class 08: connection
        # exception; 57P01-57P03: the server is shutting down, crashed or starting up.
        return not state or state.startswith("08") or state in ("57P01", "57P02", "57P03")
    return False


@functools.lru_cache(maxsize=16)
def autocommit(engine: sa.Engine) -> sa.Engine:
    """The same pool, its connections in autocommit while checked out from here (PostgreSQL)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")
