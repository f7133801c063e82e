"""Engines: SQLite set up for several writing processes, PostgreSQL pinged only after idling.

Each is a dialect of our own, a subclass of SQLAlchemy's, registered under a driver name of our own
(`sqlite+manywriters`, `postgresql+pingwhenidle`) that `make_engine` gives the plain URLs callers
pass: the setup lives in the methods SQLAlchemy calls on every new connection, transaction, return
to the pool and checkout, where a reader of the dialect finds it, not in hooks hung on each engine.
"""

from __future__ import annotations

import functools
import logging
import select
import threading
import time

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

SQLITE_DRIVER = "manywriters"
POSTGRESQL_DRIVER = "pingwhenidle"
POOLER_PROBES = 3  # rounds of the pooler probe (below psycopg's prepare_threshold, 5)

log = logging.getLogger(__name__)


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

    def __init__(
        self,
        ping_after_idle: float = 5.0,
        server_prepared: bool = True,
        dead_client_seconds: float | None = None,
        **kw,
    ):
        super().__init__(**kw)
        self.ping_after_idle = ping_after_idle
        self.server_prepared, self.dead_client_seconds = server_prepared, dead_client_seconds
        self.pooler_found: bool | None = None  # what the pooler probe found; None: not probed yet
        self._probing = threading.Lock()

    def on_connect_url(self, url):
        """Each new connection: psycopg's own setup, then no server-side prepared statements behind
        a transaction pooler (told, or found by `_behind_pooler`); direct to PostgreSQL, the limits
        on a vanished client's session (`limit_dead_client`)."""
        parent = super().on_connect_url(url)
        cargs, cparams = self.create_connect_args(url)

        def connect(dbapi_connection) -> None:
            if parent is not None:
                parent(dbapi_connection)
            pooled = not self.server_prepared or self._behind_pooler(
                dbapi_connection, lambda: self.loaded_dbapi.connect(*cargs, **cparams, autocommit=True)
            )
            if pooled:
                dbapi_connection.prepare_threshold = None
            elif self.dead_client_seconds:
                limit_dead_client(dbapi_connection, self.dead_client_seconds)

        return connect

    def _behind_pooler(self, first, connect_another) -> bool:
        """Whether this engine's URL reaches PostgreSQL through a transaction pooler although
        FOLLOWUP_DATABASE_POOLER does not say so: probed once, on the engine's first connection.
        Found, or not known (the probe failed), it is treated as one: no statement prepared on the
        server (what a transaction pooler breaks: docs/operations/pgbouncer.md), no session setting."""
        with self._probing:
            if self.pooler_found is None:
                try:
                    self.pooler_found = shares_server_sessions(first, connect_another)
                except psycopg.Error:
                    return True  # cannot tell: the next new connection probes again
                if self.pooler_found:
                    log.error(
                        "DATABASE_URL reaches PostgreSQL through a transaction pooler: set "
                        "FOLLOWUP_DATABASE_POOLER=transaction (docs/operations/pgbouncer.md); "
                        "meanwhile no statement is prepared on the server"
                    )
            return self.pooler_found

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


def make_engine(
    url: str,
    ping_after_idle: float = 5.0,
    *,
    server_prepared: bool = True,
    dead_client_seconds: float | None = None,
) -> sa.Engine:
    """An engine for a plain `sqlite://` or `postgresql://` URL, through our dialect of its database;
    `ping_after_idle`: seconds in the pool after which a PostgreSQL connection is tested before use;
    `dead_client_seconds`: the bound on a vanished client's session (`limit_dead_client`), none
    when not given (a migration's own engine).

    `server_prepared=False` for a URL that reaches a transaction pooler (FOLLOWUP_DATABASE_POOLER):
    psycopg prepares a statement on the server once it ran `prepare_threshold` (5) times on a
    connection, under a name of that connection's (`_pg3_0`...), and later runs it by that name. A
    prepared statement lives in the server session, which a pooler hands to another client after
    each transaction: the next client's own `_pg3_0` then already exists there, and this one's is
    missing from the session it gets next. `prepare_threshold=None` prepares nothing (every
    statement is parsed and planned where it runs); direct to PostgreSQL the hot statements keep
    their plans. Not told, the dialect probes for a pooler on its first connection
    (`shares_server_sessions`)."""
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
        server_prepared=server_prepared,
        dead_client_seconds=dead_client_seconds,
        connect_args={"cursor_factory": PlainDescriptionCursor},
    )


def shares_server_sessions(first: psycopg.Connection, connect_another) -> bool:
    """Whether two client connections take turns on server sessions, as behind a transaction pooler.

    Direct to PostgreSQL a client connection is one server session (one backend pid) for its life,
    and two open at once are two. Behind a transaction pooler the session changes hands when a
    transaction ends: the second connection gets the session the first just gave back (PgBouncer
    reuses the last one freed), or the first lands on another session (another client took its
    own, or the pooler goes round robin). Either shows within a few rounds; direct, neither can."""
    other = connect_another()
    try:
        firsts, others = set(), set()
        for _ in range(POOLER_PROBES):
            firsts.add(first.execute("SELECT pg_backend_pid()").fetchone()[0])
            first.rollback()  # the transaction ends: a pooler may hand its session on
            others.add(other.execute("SELECT pg_backend_pid()").fetchone()[0])  # autocommit
    finally:
        other.close()
    return len(firsts) > 1 or len(others) > 1 or bool(firsts & others)


def limit_dead_client(dbapi_connection: psycopg.Connection, seconds: float) -> None:
    """How long PostgreSQL keeps the session of a client that vanished (its host cut off the network
    or powered off) with locks held: without these the session lasts until TCP gives up, hours.

    - `idle_in_transaction_session_timeout`: a session idle in a transaction `seconds` is ended, its
      locks released (the client's next statement would fail; a live one is never that slow);
    - TCP keepalives and `tcp_user_timeout` (PostgreSQL 12+): a silent peer is found within about
      `seconds`, idle or with an answer unacknowledged; `client_connection_check_interval`
      (PostgreSQL 14+) ends a running statement of a client found gone.
    Session settings, made once per connection: only direct to PostgreSQL (behind a pooler they
    belong to the role, docs/operations/pgbouncer.md). Over a Unix socket the TCP ones do nothing."""
    version = dbapi_connection.info.server_version
    probe = max(1, round(seconds / 3))
    values = {"idle_in_transaction_session_timeout": f"{round(seconds * 1000)}ms"}
    values |= {"tcp_keepalives_idle": f"{probe}s", "tcp_keepalives_interval": f"{max(1, probe // 3)}s"}
    values["tcp_keepalives_count"] = "3"
    if version >= 120000:
        values["tcp_user_timeout"] = f"{round(seconds * 1000)}ms"
    if version >= 140000:
        values["client_connection_check_interval"] = f"{probe}s"
    calls = ", ".join(f"set_config('{name}', %s, false)" for name in values)
    was = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # one round trip, and the settings last (no rollback undoes them)
    try:
        dbapi_connection.execute(f"SELECT {calls}", list(values.values()))
    finally:
        dbapi_connection.autocommit = was


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
