"""Engines: SQLite set up for several writing processes, PostgreSQL pinged only after idling.

Each is a dialect of our own, a subclass of SQLAlchemy's, registered under a driver name of our own
(`sqlite+manywriters`, `postgresql+pingwhenidle`) that `make_engine` gives the plain URLs callers
pass: the setup lives in the methods SQLAlchemy calls on every new connection, transaction, return
to the pool and checkout, where a reader of the dialect finds it, not in hooks hung on each engine.
"""

from __future__ import annotations

import functools
import select
import time

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

SQLITE_DRIVER = "manywriters"
POSTGRESQL_DRIVER = "pingwhenidle"


class SQLiteForManyWriters(SQLiteDialect_pysqlite):
    """WAL + busy timeout + BEGIN IMMEDIATE: web, worker and beat write at once without 'locked'."""

    supports_statement_cache = True  # a subclass must say so itself, or SQLAlchemy stops caching

    def on_connect(self):
        parent = super().on_connect()

        def connect(dbapi_conn) -> None:
            parent(dbapi_conn)  # SQLAlchemy's own setup (regexp, floor)
            dbapi_conn.isolation_level = None  # let us emit BEGIN ourselves (do_begin)
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return connect

    def do_begin(self, dbapi_connection) -> None:
        # A deferred transaction that later writes can fail at once with SQLITE_BUSY instead of
        # waiting; taking the write lock up front makes the busy timeout apply.
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        finally:
            cursor.close()


class PsycopgPingedWhenIdle(PGDialect_psycopg):
    """psycopg's dialect whose pre-ping (`pool_pre_ping=True` in `make_engine`) tests a pooled
    connection before use only if it sat idle, or if the server said something to it while it sat
    in the pool: a restarted or idle-killed server, or one that ended every session (a failover,
    `pg_terminate_backend`), shows up as a dead connection there, and the pool then connects anew.

    Why not plain `pool_pre_ping`: it pings on every checkout, a round trip per transaction, and a
    busy web process checks out a connection per transaction (two per request). One used a moment
    ago is alive unless its socket has something to read: an idle session is sent nothing but its
    server's goodbye (the FATAL message, then the close), which a zero-timeout poll sees without a
    round trip. A disconnect during use invalidates the connection (`is_disconnect`).

    "Used a moment ago": the pool ends a returned connection's transaction with `do_rollback` (its
    reset on return, or the Connection's own rollback when it closes with one open), which stamps
    the time on the driver's connection.
    """

    supports_statement_cache = True  # a subclass must say so itself, or SQLAlchemy stops caching

    def __init__(self, ping_after_idle: float = 5.0, **kw):
        super().__init__(**kw)
        self.ping_after_idle = ping_after_idle

    def do_rollback(self, dbapi_connection) -> None:
        super().do_rollback(dbapi_connection)
        # The pool hands the reset its proxy of the driver's connection; the ping gets the driver's.
        driver_connection = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
        if driver_connection is not None:
            driver_connection._returned_at = time.monotonic()

    def do_ping(self, dbapi_connection) -> bool:
        returned_at = getattr(dbapi_connection, "_returned_at", None)
        idle = returned_at is None or time.monotonic() - returned_at >= self.ping_after_idle
        if not idle and not _has_input(dbapi_connection):
            return True
        return self.ping_server(dbapi_connection)

    def ping_server(self, dbapi_connection) -> bool:
        """The round trip (SELECT 1). Its failure, whatever it is, replaces this one connection:
        the pool connects anew for the checkout, and leaves the other pooled connections be (a
        pre-ping's plain False would mark every one of them for reconnecting)."""
        try:
            return super().do_ping(dbapi_connection)
        except Exception as error:
            raise sa.exc.DisconnectionError() from error


registry.register(f"sqlite.{SQLITE_DRIVER}", __name__, "SQLiteForManyWriters")
registry.register(f"postgresql.{POSTGRESQL_DRIVER}", __name__, "PsycopgPingedWhenIdle")

_OURS = {
    "sqlite": f"sqlite+{SQLITE_DRIVER}",
    "sqlite+pysqlite": f"sqlite+{SQLITE_DRIVER}",
    "postgresql": f"postgresql+{POSTGRESQL_DRIVER}",
    "postgres": f"postgresql+{POSTGRESQL_DRIVER}",
    "postgresql+psycopg": f"postgresql+{POSTGRESQL_DRIVER}",
}


def make_engine(url: str, ping_after_idle: float = 5.0, *, server_prepared: bool = True) -> sa.Engine:
    """An engine for a plain `sqlite://` or `postgresql://` URL, through our dialect of its database;
    `ping_after_idle`: seconds in the pool after which a PostgreSQL connection is tested before use.

    `server_prepared=False` for a URL that reaches a transaction pooler (FOLLOWUP_DATABASE_POOLER):
    psycopg prepares a statement on the server once it ran `prepare_threshold` (5) times on a
    connection, under a name of that connection's (`_pg3_0`...), and later runs it by that name. A
    prepared statement lives in the server session, which a pooler hands to another client after
    each transaction: the next client's own `_pg3_0` then already exists there, and this one's is
    missing from the session it gets next. `prepare_threshold=None` prepares nothing (every
    statement is parsed and planned where it runs); direct to PostgreSQL the hot statements keep
    their plans."""
    scheme, separator, rest = url.partition("://")
    ours = _OURS.get(scheme) or (scheme if scheme in _OURS.values() else None)
    if not separator or ours is None:
        raise ValueError(f"database URL: unsupported scheme {scheme!r} (sqlite:// or postgresql://)")
    url = f"{ours}://{rest}"
    if ours.startswith("sqlite"):
        return sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
        )
    # hide_parameters: a failed statement's error (logged, and in tracebacks) shows the SQL without
    # its bound values, which are names, phone numbers and notes (PHI).
    return sa.create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        hide_parameters=True,
        pool_pre_ping=True,  # the dialect's do_ping decides whether to make the round trip
        ping_after_idle=ping_after_idle,
        connect_args={
            "cursor_factory": PlainDescriptionCursor,
            **({} if server_prepared else {"prepare_threshold": None}),
        },
    )


class PlainDescriptionCursor(psycopg.Cursor):
    """psycopg's cursor whose `description` is plain DB-API 7-tuples (name, type oid, and five
    None) instead of psycopg's `Column` objects.

    Why: psycopg builds `description` anew on every access, a `Column` per column, each looking up
    its type's information for sizes and precision nobody here reads. SQLAlchemy reads the name and
    type oid of every column of every result, and a wide row (a lead's columns) made that a visible
    share of a worker's Python time (docs/architecture/hot-paths.md, "Result columns read plainly").
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
