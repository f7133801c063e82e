"""The unit of work a use case receives: what it reads through and every fact it writes goes into.

One kind, one transaction (Cosmic Python, chapters 6 and 8), opened by `Database.unit_of_work()`
(app/platform/db/database.py). It holds an SQLAlchemy Session (`uow.session`, a `WritesTogether`:
its flush writes the unit's new rows in one statement, app/platform/db/writes.py) and passes the
Session's reads and writes on to it (`execute`, `scalars`, `get`, `add`, `flush`, ...: the set
below, nothing else). Its `commit()` first does the work the use case collected for it and then
commits. Its own:
- `add(obj, with_id=True)`: a new row inserted at once, its id needed now;
- `emit(event)`: an outbox event, a new row inserted with the unit's others (app/platform/events
  schedules their one processing job itself);
- `schedule(job)`: a ledger row (app/platform/scheduling's `Job`), written at the commit with the unit's
  others in one statement (`Job.write_all`), after every other collected work, and published
  once the unit has committed;
- `before_commit(key, item, finish)`: any other work done once per unit with all its items;
- `after_commit(callback)`: run once the unit has committed, never when it rolled back;
- `settings`, `dispatcher`, `redis`: what the Database was built with; `cache`: the unit's own
  memory (what a use case read once and reads again), gone with the unit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from app.platform.db.writes import WritesTogether, insert_now

_LEDGER = "db.ledger"  # the key of `schedule`


def _passed_on(name: str):
    """The unit's method `name`: its Session's, called on it as it is."""
    method = getattr(WritesTogether, name)
    return functools.wraps(method)(lambda self, *args, **kwargs: method(self.session, *args, **kwargs))


def _session_attribute(name: str) -> property:
    return property(lambda self: getattr(self.session, name), doc=f"The Session's `{name}`.")


class UnitOfWork:
    """One transaction: a Session, and the work collected for it that `commit()` does first."""

    # What use cases call on their unit that is the Session's own: passed on to it, unchanged.
    execute, scalar, scalars, get = map(_passed_on, ("execute", "scalar", "scalars", "get"))
    add_all, delete, merge, flush = map(_passed_on, ("add_all", "delete", "merge", "flush"))
    expunge, expire_all, query = map(_passed_on, ("expunge", "expire_all", "query"))
    connection, get_bind, begin_nested = map(_passed_on, ("connection", "get_bind", "begin_nested"))
    in_nested_transaction, get_transaction = map(_passed_on, ("in_nested_transaction", "get_transaction"))
    new, dirty, deleted = map(_session_attribute, ("new", "dirty", "deleted"))
    no_autoflush, identity_map = map(_session_attribute, ("no_autoflush", "identity_map"))

    def __init__(self, session: WritesTogether, *, database):
        self.session = session
        self.database = database
        self.cache: dict = {}
        self._collected: dict[str, tuple[list, Callable[[list], None], bool]] = {}
        self._after_commit: list[Callable[[], None]] = []

    def __contains__(self, instance) -> bool:
        return instance in self.session

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def settings(self):
        return self.database.settings

    @property
    def dispatcher(self):
        return self.database.dispatcher

    @property
    def redis(self):
        return self.database.redis

    def add(self, instance, *, with_id: bool = False):
        """A new row (or an object to keep); `with_id`: its id is needed now (an event names it)."""
        if with_id:
            return insert_now(self.session, instance)
        self.session.add(instance)
        return instance

    def emit(self, event) -> None:
        """An outbox event row: added, and inserted with the unit's other events at its flush."""
        self.add(event)

    def schedule(self, job) -> None:
        """Put `job` on the ledger: written at the commit, with the unit's other jobs, by
        `job.write_all(uow, jobs)`; in a savepoint (which may roll back alone), at once."""
        if self.session.in_nested_transaction():
            job.write_all(self, [job])
            return
        self.before_commit(_LEDGER, job, functools.partial(job.write_all, self), last=True)

    def scheduled(self, *, take: bool) -> list:
        """The jobs `schedule`d so far, for work that must see their rows now (a ledger read);
        `take`: taken out (they are not written again at the commit)."""
        entry = self._collected.pop(_LEDGER, None) if take else self._collected.get(_LEDGER)
        return list(entry[0]) if entry else []

    def before_commit(self, key: str, item, finish: Callable[[list], None], *, last: bool = False) -> None:
        """Add `item` to the unit's list `key`; `finish(items)` runs once, with all of them, at the
        commit (a rolled-back unit forgets them). A finish may add more items; `last`: finished
        after every other key."""
        if key not in self._collected:
            self._collected[key] = ([], finish, last)
        self._collected[key][0].append(item)

    def finish_collected(self) -> None:
        """Do the collected work now rather than at the commit (the job runner: a failure in it is
        then the job's, and a batch of jobs finishes theirs together)."""
        collected = self._collected
        while collected:
            first = [key for key, (_, _, last) in collected.items() if not last] or list(collected)
            items, finish, _ = collected.pop(first[0])
            finish(items)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback()` once the unit has committed (never when it rolled back)."""
        self._after_commit.append(callback)

    def run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def commit(self) -> None:
        self.finish_collected()
        self.session.commit()

    def rollback(self) -> None:
        self._collected.clear()
        self.session.rollback()

    def close(self) -> None:
        self._collected.clear()
        self.session.close()
