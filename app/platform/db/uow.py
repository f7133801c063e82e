"""The unit of work a use case receives: what it reads through and every fact it writes goes into.

One kind, one transaction (Cosmic Python, chapters 6 and 8), opened by `Database.unit_of_work()`
(app/platform/db/database.py). It holds an SQLAlchemy Session (`uow.session`, a `WritesTogether`
whose flush writes the unit's new rows in one statement, app/platform/db/writes.py) and passes on
to it the Session's reads and writes in the table below, nothing else. It collects, in lists:
`events` (the outbox rows `emit` added, named by one processing job), `jobs` (the ledger jobs
`schedule` was given: app/platform/scheduling's `Job`) and `to_publish` (what it tells others once
committed: due jobs to the broker, live-stream messages; objects with a `publish()`). `commit()`
reads top-down: `write` (flush; the events' processing job; the jobs, in one statement), the
Session's commit, `publish`. A rollback forgets all three lists.
Still on it, to go (issue 61): `cache`, the unit's own memory of what a use case read once and
reads again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from app.platform.db.writes import WritesTogether, insert_now


def _passed_on(name: str):
    """The unit's method `name`: its Session's, called on it as it is."""
    method = getattr(WritesTogether, name)
    return functools.wraps(method)(lambda self, *args, **kwargs: method(self.session, *args, **kwargs))


def _read_on(holder: str, *names: str) -> list[property]:
    """The unit's attributes `names`: those of its `holder` (its session, its database)."""
    return [property(lambda self, name=name: getattr(getattr(self, holder), name)) for name in names]


class UnitOfWork:
    """One transaction: a Session, and the work collected for it that `commit()` does first."""

    # What use cases call on their unit that is the Session's own: passed on to it, unchanged.
    execute, scalar, scalars, get = map(_passed_on, ("execute", "scalar", "scalars", "get"))
    add_all, delete, merge, flush = map(_passed_on, ("add_all", "delete", "merge", "flush"))
    expunge, expire_all, query = map(_passed_on, ("expunge", "expire_all", "query"))
    connection, get_bind, begin_nested = map(_passed_on, ("connection", "get_bind", "begin_nested"))
    in_nested_transaction, get_transaction = map(_passed_on, ("in_nested_transaction", "get_transaction"))
    new, dirty, deleted, no_autoflush, identity_map = _read_on(
        "session", "new", "dirty", "deleted", "no_autoflush", "identity_map"
    )

    def __init__(self, session: WritesTogether, *, database):
        self.session = session
        self.database = database
        self.events: list = []  # the outbox rows emitted, for their one processing job
        self.jobs: list = []  # the ledger jobs scheduled, written together by `write`
        self.to_publish: list = []  # what the commit publishes once it has committed
        self._processing_job: Callable[[list], object] | None = None
        self.cache: dict = {}

    def __contains__(self, instance) -> bool:
        return instance in self.session

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def add(self, instance, *, with_id: bool = False):
        """A new row (or an object to keep); `with_id`: its id is needed now (an event names it)."""
        if with_id:
            return insert_now(self.session, instance)
        self.session.add(instance)
        return instance

    def emit(self, event, *, processing_job: Callable[[list], object]) -> None:
        """An outbox event row, inserted with the unit's other new rows and named by its one
        processing job, `processing_job(events)` (app/platform/events/consumers.py), which `write`
        schedules once the events have their ids."""
        self.session.add(event)
        self.events.append(event)
        self._processing_job = processing_job

    def schedule(self, job) -> None:
        """`job` (app/platform/scheduling's `Job`) on the ledger: written by `write` with the unit's
        other jobs (`Job.write_all`); in a savepoint (which may roll back alone), at once."""
        if self.session.in_nested_transaction():
            job.write_all(self, [job])
        else:
            self.jobs.append(job)

    def publish_after_commit(self, publication) -> None:
        """`publication.publish()` once the unit has committed (never if it rolled back)."""
        self.to_publish.append(publication)

    def commit(self) -> None:
        """Flush; write the events and their processing job; write the jobs; commit; publish."""
        self.write()
        self.session.commit()
        self.publish()

    def write(self) -> None:
        """What `commit` writes before it commits, done now (the job runner: a failure in it is then
        the job's, and a batch of jobs writes theirs together)."""
        self.session.flush()
        events = [event for event in self.events if event in self.session]  # a savepoint's rolled back
        self.events = []
        if events:
            self.jobs.append(self._processing_job(events))
        jobs, self.jobs = self.jobs, []
        if jobs:
            jobs[0].write_all(self, jobs)

    def publish(self) -> None:
        """What the committed unit tells others: its due jobs to the broker, its stream messages."""
        publications, self.to_publish = self.to_publish, []
        for publication in publications:
            publication.publish()

    def rollback(self) -> None:
        self.events, self.jobs, self.to_publish = [], [], []
        self.session.rollback()

    def close(self) -> None:
        self.events, self.jobs, self.to_publish = [], [], []
        self.session.close()
