"""The unit of work: one transaction (or, on PostgreSQL, autocommit statements), its after-commit
hooks, and the request-scoped connection and transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa
from flask import current_app, g, has_request_context
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import autocommit, make_engine
from app.db.writes import AutocommitSession, NeedsTransaction, batched_unit

log = logging.getLogger(__name__)
T = TypeVar("T")


class Database:
    """One engine and session factory per app, and what its units of work publish through.

    Built once by `create_app` (so once per web or worker process) with the app's settings, its
    job dispatcher and its Redis client: the ledger publishes the rows a transaction scheduled once
    that transaction commits (app/scheduling/service.py), through the dispatcher of the Database that
    opened the session (`database_of`). Code given a session needs nothing else to schedule a job;
    code that opens units of work of its own (the job runner, the sweeps, a send outside the
    transaction) is given the Database by its caller. A Database built without a dispatcher reads
    and writes, but cannot publish: scheduling a job due soon raises.
    """

    def __init__(self, url: str, *, settings=None, dispatcher=None, redis=None):
        self.url = url
        self.settings, self.dispatcher, self.redis = settings, dispatcher, redis
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(
            bind=self.engine, class_=DatabaseSession, expire_on_commit=False, database=self
        )
        self._autocommit = autocommit(self.engine) if self.dialect == "postgresql" else None

    @contextmanager
    def single_statement(self) -> Iterator[sa.Connection]:
        """A connection for statements that need no transaction: on PostgreSQL in autocommit, so
        no BEGIN and ROLLBACK round trips around them; in a request, the request's own (see
        `_request_connection`)."""
        shared = self._request_connection()
        if shared is not None:
            yield shared
            return
        with (self._autocommit or self.engine).connect() as connection:
            yield connection

    def _request_connection(self) -> sa.Connection | None:
        # PostgreSQL, in a request: one autocommit connection for all the request's work outside
        # transactions (authentication, an autocommit session), checked out of the pool once and
        # returned when the request ends (close_request_connection): a checkout and its return
        # cost about as much as a short statement.
        if self._autocommit is None or not has_request_context():
            return None
        connection = g.get(_REQUEST_CONNECTION)
        if connection is None or connection.invalidated:
            connection = self._autocommit.connect()
            setattr(g, _REQUEST_CONNECTION, connection)
        return connection

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def connect_ahead(self) -> None:
        """Open one pooled connection now, in a process about to serve (a gunicorn worker, a Celery
        pool child), so that its first request or job does not wait for the database to start a
        session for it. A database not reachable yet is not an error here: the first use retries."""
        try:
            with self.engine.connect():
                pass
        except sa.exc.OperationalError as error:
            log.warning(
                "no database connection opened ahead", extra={"data": {"error": type(error).__name__}}
            )

    def run(self, work: Callable[[Session | AutocommitSession], T], *, capture: bool = False) -> T:
        """`work(session)` in a unit of work, its answer returned; done once more, in a unit of its
        own, if the database dropped the connection before the unit reached its commit.

        Why here: a failover or a restarted server ends every pooled connection at once, and the
        first use of each fails; the pool replaces them (app/db/engine.py), so the work's second
        try runs on a live one. Only before the commit: a connection lost during the commit leaves
        unknown whether it committed, and doing the work again could store it twice. Inside
        `request_transaction` the lost transaction is the request's: no second try.

        `capture`: in `capture_unit_of_work`, and again in `unit_of_work` when that raises
        `NeedsTransaction` (nothing was written).
        """
        for attempt in (1, 2):
            committing: list[bool] = []
            try:
                if capture:
                    try:
                        with self.capture_unit_of_work(committing=committing) as session:
                            return work(session)
                    except NeedsTransaction:
                        pass
                with self.unit_of_work(committing=committing) as session:
                    return work(session)
            except sa.exc.DBAPIError as error:
                if attempt == 2 or committing or not error.connection_invalidated:
                    raise
                if _request_transaction() is not None:
                    raise
                log.warning("the database dropped the connection; doing the work again on a new one")
        raise AssertionError("unreachable")

    @contextmanager
    def unit_of_work(self, *, committing: list[bool] | None = None) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error, then run after-commit hooks.
        Inside `request_transaction`: that transaction, committed (or rolled back) when it ends.
        `committing` (for `run`): True is appended once the work is done and the commit begins."""
        joined = _request_transaction()
        if joined is not None:
            yield joined
            return
        session = self.session_factory()
        try:
            yield session
            if committing is not None:
                committing.append(True)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        run_after_commit_hooks(session)

    @contextmanager
    def capture_unit_of_work(
        self, *, committing: list[bool] | None = None
    ) -> Iterator[Session | AutocommitSession]:
        """The unit of work of a hot use case (lead capture). PostgreSQL: a batched unit, in
        autocommit: the use case's reads run at once, each on its own, and the rows it adds are
        written together by one statement when the block ends (app/db/writes.py), so no BEGIN and
        COMMIT round trips and one statement for all its writes. It raises `NeedsTransaction`
        when the use case needs a transaction after all (nothing was written): do it again in
        `unit_of_work`. Elsewhere, and inside `request_transaction`: an ORM unit of work.

        For a use case whose reads need no common snapshot nor a lock held across statements:
        each statement sees what has committed when it starts, and a lock ends with its statement.
        `committing`: as `unit_of_work`'s; a batched unit commits as it writes its rows.
        """
        if self._autocommit is None or _request_transaction() is not None:
            with self.unit_of_work(committing=committing) as session:
                yield session
            return
        with (
            self.single_statement() as connection,
            batched_unit(self, connection, committing=committing) as session,
        ):
            yield session
        run_after_commit_hooks(session)

    @contextmanager
    def request_transaction(self) -> Iterator[Session]:
        """One transaction for the rest of a request's work: every `unit_of_work` and
        `capture_unit_of_work` opened inside the block is this one, so all the request's writes
        commit together, with whatever the block adds after them, or none of them does.

        For a request whose writes and a record of them must not be half-stored by a lost
        connection or a dying process: an Idempotency-Key request's write and its stored answer.
        """
        if _request_transaction() is not None:
            raise RuntimeError("a request_transaction is already open")
        with self.unit_of_work() as session:
            setattr(g, _REQUEST_TRANSACTION, session)
            try:
                yield session
            finally:
                g.pop(_REQUEST_TRANSACTION, None)  # before the commit: its hooks open their own


class DatabaseSession(Session):
    """A Session that knows the Database that opened it (`database_of`)."""

    def __init__(self, *args, database: Database, **kwargs):
        super().__init__(*args, **kwargs)
        self.database = database


_REQUEST_CONNECTION = "followup_autocommit_connection"  # flask.g
_REQUEST_TRANSACTION = "followup_request_transaction"  # flask.g, see Database.request_transaction


def _request_transaction() -> Session | None:
    return g.get(_REQUEST_TRANSACTION) if has_request_context() else None


def close_request_connection(_error=None) -> None:
    """Return the request's autocommit connection to the pool (a teardown_request handler)."""
    connection = g.pop(_REQUEST_CONNECTION, None)
    if connection is not None:
        connection.close()


def database_of(session: Session | AutocommitSession) -> Database:
    """The Database whose unit of work opened `session` (its settings, dispatcher and Redis)."""
    database = getattr(session, "database", None)
    if database is None:
        raise RuntimeError("this session was not opened by a Database: use db.unit_of_work()")
    return database


def get_db() -> Database:
    """The app's Database, for views and Celery tasks (which pass it on): services take theirs as
    an argument, or from their session (`database_of`)."""
    return current_app.extensions["followup.db"]


@contextmanager
def unit_of_work() -> Iterator[Session]:
    with get_db().unit_of_work() as session:
        yield session


def after_commit(session: Session, callback) -> None:
    """Run `callback()` once the session's transaction has committed (never on rollback)."""
    session.info.setdefault("after_commit", []).append(callback)


def run_after_commit_hooks(session: Session) -> None:
    callbacks = session.info.pop("after_commit", [])
    for callback in callbacks:
        callback()
