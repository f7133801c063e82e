"""The unit of work a use case receives: what it reads through and every fact it writes goes into.

One transaction (Cosmic Python, chapters 6 and 8), opened by `Database.unit_of_work()`. It holds a
Session (`uow.session`, whose flush writes the new rows in one statement: writes.py), passes on to
it the Session's reads and writes named in `PASSED_ON`, and collects in lists: `events` (the
outbox rows `emit` added), `jobs` (the ledger jobs `schedule` was given) and `to_publish` (objects
with a `publish()`: due jobs to the broker, stream messages). `commit()` reads top-down: `write`
(flush; the events' processing job; the jobs), commit, `publish`; a rollback forgets the lists.
No settings, client or cache hang off it: a use case is handed them (app/bootstrap.py says how).
"""

from __future__ import annotations

from collections.abc import Callable

from app.platform.db.writes import WritesTogether, insert_now

PASSED_ON = frozenset(
    {"execute", "scalar", "scalars", "get", "query", "add_all", "delete", "merge", "flush", "expunge"}
    | {"expire_all", "connection", "get_bind", "begin_nested", "in_nested_transaction"}
    | {"new", "dirty", "deleted", "no_autoflush", "identity_map"}
)


class UnitOfWork:
    """One transaction: a Session, and the work collected for it that `commit()` does first."""

    def __init__(self, session: WritesTogether, *, database):
        self.session = session
        self.database = database
        self.events: list = []  # the outbox rows emitted, for their one processing job
        self.jobs: list = []  # the ledger jobs scheduled, written together by `write`
        self.to_publish: list = []  # what the commit publishes once it has committed
        self._processing_job: Callable[[list], object] | None = None

    def __getattr__(self, name: str):  # asked only for what the unit has not itself
        if name in PASSED_ON:
            return getattr(self.session, name)
        raise AttributeError(f"a unit of work has no {name!r}")

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
        """An outbox event row, inserted with the other new rows; `write` schedules its one
        processing job, `processing_job(events)` (events/consumers.py), once they have ids."""
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
        """What `commit` writes before it commits, done now (by the job runner: its failure is the job's)."""
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
