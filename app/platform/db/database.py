"""The Database: one engine per process's app (the Flask app of a web or worker process, the
event-stream app), and the units of work (app/platform/db/uow.py) opened on it. No Flask here.

Besides units of work: `run` does a unit's work once more if the database dropped the connection
before the commit (a failover), and `single_statement` hands out a connection in autocommit on
PostgreSQL for statements that need no transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from app.platform.db.clock import DatabaseClock
from app.platform.db.engine import autocommit, make_engine
from app.platform.db.protected import use_keys
from app.platform.db.uow import UnitOfWork
from app.platform.db.writes import WritesTogether

log = logging.getLogger(__name__)
T = TypeVar("T")


class Database:
    """One engine and session factory per app, and what its units of work publish through.

    Built once by `create_app` (so once per web or worker process) with the app's settings, its
    job dispatcher, its Redis client and its Wiring (app/bootstrap.py): a unit of work holds its
    Database (`uow.database`), so that what it publishes once it commits goes through them (the
    ledger's due rows, app/platform/scheduling/service.py; the live stream's messages); work deep
    under a unit reaches the handler map, the settings and the Redis client through it
    (`uow.database.wiring`, `.settings`, `.redis`: where no caller can pass them; a view is handed
    the settings by `inject`, a consumer by app/bootstrap.py). Code given a unit needs
    nothing else to schedule a job; code that opens units of its own (the job runner, the sweeps,
    a send outside the transaction) is given the Database by its caller. The event-stream app
    (app/streaming/__init__.py) builds one without a dispatcher or a Wiring: it reads and writes,
    runs no handler, and cannot publish: a job it scheduled due soon is not sent (`publish_claimed`
    logs the failure and hands the row back to pending for the promote sweep of a process that can).
    """

    def __init__(self, url: str, *, settings=None, dispatcher=None, redis=None, wiring=None):
        self.url = url
        self.settings, self.dispatcher, self.redis = settings, dispatcher, redis
        # The process's engine (app/bootstrap.py), which create_app builds first: the route by which
        # work deep under a unit of work reaches the handler map (`session.database.wiring`). None: a
        # Database that runs no handler (a test's second connection pool, a probe).
        self.wiring = wiring
        pooled = settings is not None and settings.database_pooler == "transaction"
        dead_client = settings.database_dead_client_seconds if settings is not None else None
        self.engine = make_engine(url, server_prepared=not pooled, dead_client_seconds=dead_client)
        self._sessions = sessionmaker(bind=self.engine, class_=WritesTogether, expire_on_commit=False)
        self._autocommit = autocommit(self.engine) if self.dialect == "postgresql" else None
        self.clock = DatabaseClock(self)  # the time of record, read once a second (a worker's jobs)
        if settings is not None and settings.phi_encryption_key:
            use_keys(self.engine, settings.phi_encryption_key)  # the protected columns' key

    @contextmanager
    def single_statement(self) -> Iterator[sa.Connection]:
        """A connection for statements that need no transaction: on PostgreSQL in autocommit, so
        no BEGIN and ROLLBACK round trips around them."""
        with (self._autocommit or self.engine).connect() as connection:
            yield connection

    @property
    def job_kinds(self):
        """The engine's job kinds (registry.JobKinds): what the ledger code given this Database runs."""
        return self.wiring.job_kinds

    @property
    def events(self):
        """The engine's event map (consumer_map.EventHandlers): which job processes a unit's events."""
        return self.wiring.events

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

    def new_unit(self, **session_options) -> UnitOfWork:
        """A unit of work its caller commits and closes itself (`unit_of_work` does both);
        `session_options`: its Session's (a `bind`)."""
        return UnitOfWork(self._sessions(**session_options), database=self)

    def run(self, work: Callable[[UnitOfWork], T]) -> T:
        """`work(uow)` in a unit of work, its answer returned; done once more, in a unit of its
        own, if the database dropped the connection before the unit reached its commit.

        Why here: a failover or a restarted server ends every pooled connection at once, and the
        first use of each fails; the pool replaces them (app/platform/db/engine.py), so the work's second
        try runs on a live one. Only before the commit: a connection lost during the commit leaves
        unknown whether it committed, and doing the work again could store it twice.
        """
        for attempt in (1, 2):
            committing: list[bool] = []
            try:
                with self.unit_of_work(committing=committing) as uow:
                    return work(uow)
            except sa.exc.DBAPIError as error:
                if attempt == 2 or committing or not error.connection_invalidated:
                    raise
                log.warning("the database dropped the connection; doing the work again on a new one")
        raise AssertionError("unreachable")

    @contextmanager
    def unit_of_work(self, *, committing: list[bool] | None = None) -> Iterator[UnitOfWork]:
        """One transaction: committed on success (the unit's commit then publishes what it wrote),
        rolled back on any error. `committing` (for `run`): True is appended once the work is done
        and the commit begins."""
        uow = self.new_unit()
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
