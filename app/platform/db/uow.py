"""The unit of work a use case receives: what it reads through and every fact it writes goes into.

One kind, one transaction (Cosmic Python, chapters 6 and 8): an SQLAlchemy Session, opened by
`Database.unit_of_work()` (app/platform/db/database.py), whose `commit()` first does the work the use case
collected for it and then commits. Besides the Session's reads:
- `add(obj)`: a new row (`with_id`: inserted at once, its id needed now);
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
import warnings
from collections.abc import Callable

from sqlalchemy.exc import SADeprecationWarning
from sqlalchemy.orm import Session

from app.platform.db.writes import insert_now, rows_to_write_together, write_together

# The unit flushes its changed rows before it writes its new ones together (`flush` below,
# writes.py), through `Session.flush(objects)`: SQLAlchemy 2.1 deprecates that parameter but keeps
# it. Said here once, not as a warning in the log of every request that writes.
warnings.filterwarnings(
    "ignore", message="The `objects` parameter of `Session.flush`", category=SADeprecationWarning
)

_LEDGER = "db.ledger"  # the key of `schedule`


class UnitOfWork(Session):
    """One transaction: a Session whose `commit()` first does the unit's collected work."""

    def __init__(self, *args, database, **kwargs):
        super().__init__(*args, **kwargs)
        self.database = database
        self.cache: dict = {}
        self._collected: dict[str, tuple[list, Callable[[list], None], bool]] = {}
        self._after_commit: list[Callable[[], None]] = []

    @property
    def settings(self):
        return self.database.settings

    @property
    def dispatcher(self):
        return self.database.dispatcher

    @property
    def redis(self):
        return self.database.redis

    def add(self, instance, _warn: bool = True, *, with_id: bool = False):
        """A new row (or an object to keep); `with_id`: its id is needed now (an event names it)."""
        if with_id:
            return insert_now(self, instance)
        super().add(instance, _warn=_warn)
        return instance

    def emit(self, event) -> None:
        """An outbox event row: added, and inserted with the unit's other events at its flush."""
        self.add(event)

    def schedule(self, job) -> None:
        """Put `job` on the ledger: written at the commit, with the unit's other jobs, by
        `job.write_all(uow, jobs)`; in a savepoint (which may roll back alone), at once."""
        if self.in_nested_transaction():
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

    def flush(self, objects=None) -> None:
        """The ORM's flush, the unit's new rows written in one statement where they can be
        (app/platform/db/writes.py): after its changed rows, as the ORM orders them."""
        new = rows_to_write_together(self) if objects is None else None
        if new is None:
            super().flush() if objects is None else super().flush(objects)
            return
        changed = list(self.dirty)
        if changed:
            super().flush(changed)
        write_together(self, new)

    def commit(self) -> None:
        self.finish_collected()
        super().commit()

    def rollback(self) -> None:
        self._collected.clear()
        super().rollback()

    def close(self) -> None:
        self._collected.clear()
        super().close()
