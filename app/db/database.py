"""The Database: one engine per app, and the units of work (app/db/uow.py) opened on it.

No Flask here: the web layer hands a request's scope in (`begin_request` / `end_request`, hooked
by app/__init__.py), and the Database knows it from then on in that context."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from app.db.engine import autocommit, make_engine
from app.db.protected import use_keys
from app.db.uow import BatchedUnit, NeedsTransaction, OrmUnit, UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")


class _RequestScope:
    """A request's database state: its autocommit connection (taken once, on first use) and the
    transaction `request_transaction` opened for the rest of it."""

    def __init__(self) -> None:
        self.connection: sa.Connection | None = None
        self.transaction: OrmUnit | None = None


class Database:
    """One engine and session factory per app, and what its units of work publish through.

    Built once by `create_app` (so once per web or worker process) with the app's settings, its
    job dispatcher and its Redis client: a unit of work carries them (`uow.settings`,
    `uow.dispatcher`), so the ledger publishes the rows a unit scheduled once it commits
    (app/scheduling/service.py). Code given a unit needs nothing else to schedule a job; code that
    opens units of its own (the job runner, the sweeps, a send outside the transaction) is given
    the Database by its caller. A Database built without a dispatcher reads and writes, but
    cannot publish: scheduling a job due soon raises.
    """

    def __init__(self, url: str, *, settings=None, dispatcher=None, redis=None):
        self.url = url
        self.settings, self.dispatcher, self.redis = settings, dispatcher, redis
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(
            bind=self.engine, class_=OrmUnit, expire_on_commit=False, database=self
        )
        self._autocommit = autocommit(self.engine) if self.dialect == "postgresql" else None
        if settings is not None and settings.phi_encryption_key:
            use_keys(self.engine, settings.phi_encryption_key)  # the protected columns' key
        self._request: ContextVar[_RequestScope | None] = ContextVar(f"request_of_{id(self)}", default=None)

    # --- the request's scope, handed in by the web layer -----------------------------------------

    def begin_request(self) -> None:
        """A request starts (a before_request hook): its work outside transactions shares one
        connection, and `request_transaction` may span it."""
        self._request.set(_RequestScope())

    def end_request(self, _error=None) -> None:
        """The request ended (a teardown_request hook): its connection goes back to the pool."""
        scope = self._request.get()
        self._request.set(None)
        if scope is not None and scope.connection is not None:
            scope.connection.close()

    def _request_transaction(self) -> OrmUnit | None:
        scope = self._request.get()
        return None if scope is None else scope.transaction

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
        # transactions (authentication, a batched unit), checked out of the pool once and returned
        # when the request ends (end_request): a checkout and its return cost about as much as a
        # short statement.
        scope = self._request.get()
        if self._autocommit is None or scope is None:
            return None
        if scope.connection is None or scope.connection.invalidated:
            scope.connection = self._autocommit.connect()
        return scope.connection

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

    # --- units of work -----------------------------------------------------------------------------

    def run(
        self,
        work: Callable[[UnitOfWork], T],
        *,
        batched: bool = False,
        new_rows: dict[type, int] | None = None,
    ) -> T:
        """`work(uow)` in a unit of work, its answer returned; done once more, in a unit of its
        own, if the database dropped the connection before the unit reached its commit.

        Why here: a failover or a restarted server ends every pooled connection at once, and the
        first use of each fails; the pool replaces them (app/db/engine.py), so the work's second
        try runs on a live one. Only before the commit: a connection lost during the commit leaves
        unknown whether it committed, and doing the work again could store it twice. Inside
        `request_transaction` the lost transaction is the request's: no second try.

        `batched` (the hot use case: lead capture; `new_rows`: the rows it adds, see
        `BatchedUnit`): in a batched unit where there is one, and again in an ORM unit when that
        raises `NeedsTransaction` (nothing was written).
        """
        for attempt in (1, 2):
            committing: list[bool] = []
            try:
                if batched:
                    try:
                        with self.batched_unit(committing=committing, new_rows=new_rows) as uow:
                            return work(uow)
                    except NeedsTransaction:
                        pass
                with self.unit_of_work(committing=committing) as uow:
                    return work(uow)
            except sa.exc.DBAPIError as error:
                if attempt == 2 or committing or not error.connection_invalidated:
                    raise
                if self._request_transaction() is not None:
                    raise
                log.warning("the database dropped the connection; doing the work again on a new one")
        raise AssertionError("unreachable")

    @contextmanager
    def unit_of_work(self, *, committing: list[bool] | None = None) -> Iterator[OrmUnit]:
        """One transaction: commit on success, roll back on any error, then run after-commit hooks.
        Inside `request_transaction`: that transaction, committed (or rolled back) when it ends.
        `committing` (for `run`): True is appended once the work is done and the commit begins."""
        joined = self._request_transaction()
        if joined is not None:
            yield joined
            return
        uow = self.session_factory()
        try:
            yield uow
            if committing is not None:
                committing.append(True)
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        finally:
            uow.close()
        uow.run_after_commit()

    @contextmanager
    def batched_unit(
        self, *, committing: list[bool] | None = None, new_rows: dict[type, int] | None = None
    ) -> Iterator[UnitOfWork]:
        """The unit of work of a hot use case (lead capture). PostgreSQL: a `BatchedUnit`, in
        autocommit: the use case's reads run at once, each on its own, and the rows it adds are
        written together by one statement when the block ends, so no BEGIN and COMMIT round trips
        and one statement for all its writes. It raises `NeedsTransaction` when the use case needs
        a transaction after all (nothing was written): do it again in `unit_of_work` (`run` does).
        Elsewhere, and inside `request_transaction`: an ORM unit of work.

        For a use case whose reads need no common snapshot nor a lock held across statements:
        each statement sees what has committed when it starts, and a lock ends with its statement.
        `committing`: as `unit_of_work`'s; a batched unit commits as it writes its rows.
        """
        if self._autocommit is None or self._request_transaction() is not None:
            with self.unit_of_work(committing=committing) as uow:
                yield uow
            return
        with self.single_statement() as connection:
            uow = BatchedUnit(connection, database=self, new_rows=new_rows)
            yield uow
            if committing is not None:
                committing.append(True)  # the unit's one write commits by itself (see `run`)
            uow.commit()
        uow.run_after_commit()

    @contextmanager
    def request_transaction(self) -> Iterator[OrmUnit]:
        """One transaction for the rest of a request's work: every `unit_of_work` and
        `batched_unit` opened inside the block is this one, so all the request's writes commit
        together, with whatever the block adds after them, or none of them does.

        For a request whose writes and a record of them must not be half-stored by a lost
        connection or a dying process: an Idempotency-Key request's write and its stored answer.
        """
        if self._request_transaction() is not None:
            raise RuntimeError("a request_transaction is already open")
        scope = self._request.get()
        token = None
        if scope is None:  # outside a request (a script, a test): a scope for the block
            scope = _RequestScope()
            token = self._request.set(scope)
        try:
            with self.unit_of_work() as uow:
                scope.transaction = uow
                try:
                    yield uow
                finally:
                    scope.transaction = None  # before the commit: its hooks open their own units
        finally:
            if token is not None:
                self._request.reset(token)
                if scope.connection is not None:
                    scope.connection.close()
