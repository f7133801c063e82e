"""The unit of work a use case receives: what it reads through and every fact it writes goes into.

One object per use case (Cosmic Python, chapters 6 and 8), opened by `Database` (app/db/database.py)
and handed to the service as its `session`. Besides the reads, it offers:
- `add(obj)`: a new row, built by its fact's one builder function; `upsert`, `guard`;
- `emit(event, process)`: an outbox event; `process(events)` runs once, with all the unit's
  events, before it commits (the events' one processing job);
- `schedule(item, write)`: a ledger row written with the unit's others just before it commits;
- `before_commit(key, item, finish)`: any other work done once per unit with all its items;
- `after_commit(callback)`: run once the unit has committed (never when it rolled back), and
  `after_commit_with(key, items, finish)`: one `finish` with the items of every such call;
- `settings`, `dispatcher`, `redis`: what the Database was built with; `cache`: the unit's own
  memory (what a use case read once and reads again), gone with the unit.

Two kinds, one interface: `OrmUnit` (one transaction, an SQLAlchemy Session) and, on PostgreSQL
for lead capture, `BatchedUnit` (autocommit reads; the rows added are written by one statement,
`RowBatch`, when the unit commits, their ids reserved up front). Its `commit()` does the unit's
collected work and then commits (or writes); nothing is done behind it by session listeners.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.batch import RowBatch, allocate_ids, ids_from, new_id_columns
from app.db.engine import autocommit
from app.db.rows import insert_now

_OUTBOX, _LEDGER = "db.outbox", "db.ledger"  # the keys of `emit` and `schedule`


class NeedsTransaction(Exception):
    """What a batched unit cannot do (a lock held across statements, a guard that found its row
    gone): `Database.run` does the use case again in an ORM unit. Nothing was written."""


class UnitOfWork:
    """What both kinds of unit offer a use case (see the module's docstring)."""

    batched = False

    def _start(self, database) -> None:
        self.database = database
        self.cache: dict = {}
        self._collected: dict[str, tuple[list, Callable[[list], None], bool]] = {}
        self._after_commit: list[Callable[[], None]] = []
        self._after_commit_items: dict[str, list] = {}

    @property
    def settings(self):
        return self.database.settings

    @property
    def dispatcher(self):
        return self.database.dispatcher

    @property
    def redis(self):
        return self.database.redis

    # --- work done once per unit ------------------------------------------------------------------

    def before_commit(self, key: str, item, finish: Callable[[list], None], *, last: bool = False) -> None:
        """Add `item` to the unit's list `key`; `finish(items)` runs once, with all of them, when
        the unit commits (an ORM unit: the items still in it; a rolled-back unit forgets them). A
        finish may add more items. `last`: finished after every other key, whose finishes may add
        to it (the ledger's rows, which the events' finish adds to, go in one statement)."""
        if key not in self._collected:
            self._collected[key] = ([], finish, last)
        self._collected[key][0].append(item)

    def emit(self, event, process: Callable[[list], None], *, item=None) -> None:
        """An outbox event (its row built by app/events): added, and `process(items)` runs with the
        unit's events (or the `item` given for each) before it commits."""
        self.add(event)
        self.before_commit(_OUTBOX, event if item is None else item, process)

    def schedule(self, item, write: Callable[[list], None]) -> None:
        """A ledger row to write at the commit: `write(items)` once, after every other finish."""
        self.before_commit(_LEDGER, item, write, last=True)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback()` once the unit has committed (never when it rolled back)."""
        self._after_commit.append(callback)

    def after_commit_with(self, key: str, items: list, finish: Callable[[list], None]) -> None:
        """Once the unit has committed: `finish(all items)`, once, with the items of every call
        with `key` (one publish for all the rows the unit scheduled)."""
        pending = self._after_commit_items.get(key)
        if pending is None:
            pending = self._after_commit_items[key] = []

            def run() -> None:
                self._after_commit_items.pop(key, None)
                finish(pending)

            self.after_commit(run)
        pending.extend(items)

    def run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def finish_collected(self) -> None:
        """Do the collected work now rather than at the commit (the job runner: a failure in it is
        then the job's, and a batch of jobs finishes theirs together)."""
        collected = self._collected
        while collected:
            first = [key for key, (_, _, last) in collected.items() if not last] or list(collected)
            items, finish, _ = collected.pop(first[0])
            finish(items)

    def forget_collected(self) -> None:
        self._collected.clear()

    def scheduled_items(self, *, take: bool) -> list:
        """The ledger rows `schedule`d so far in an ORM unit, for work that must see them now (a
        ledger read); `take`: taken out (they are not written again at the commit)."""
        if self.batched:
            return []
        entry = self._collected.pop(_LEDGER, None) if take else self._collected.get(_LEDGER)
        return list(entry[0]) if entry else []


class OrmUnit(UnitOfWork, Session):
    """One transaction: an SQLAlchemy Session whose `commit()` first does the unit's collected work."""

    def __init__(self, *args, database, **kwargs):
        Session.__init__(self, *args, **kwargs)
        self._start(database)

    def add(self, instance, _warn: bool = True, *, with_id: bool = False):
        """A new row (or an object to keep in the session); `with_id`: its id is needed now (an
        event names it): inserted at once."""
        if with_id:
            return insert_now(self, instance)
        Session.add(self, instance, _warn)
        return instance

    def commit(self) -> None:
        self.finish_collected()  # Session.commit commits the outermost transaction: the unit's
        Session.commit(self)

    def rollback(self) -> None:
        self.forget_collected()
        Session.rollback(self)

    def close(self) -> None:
        self.forget_collected()
        Session.close(self)

    def upsert(self, statements: dict[str, sa.Insert], values: dict) -> None:
        """A row given as an INSERT ... ON CONFLICT (by dialect name: the domain's queries.py)."""
        self.execute(statements[self.get_bind().dialect.name], values)

    def guard(self, select: sa.Select, params: dict) -> None:
        """An ORM unit holds its locks instead: nothing to do (see `BatchedUnit.guard`)."""

    def require_transaction(self, why: str) -> None:
        """This unit is one transaction already."""

    def give_ids(self, objs: list) -> None:
        """The ids of rows added to the unit, known from here on."""
        self.flush()

    def kept(self, obj) -> bool:
        """Whether a row added is still to be written (a rolled-back savepoint drops its own)."""
        return obj in self

    def id_columns(self) -> list:
        return []

    @contextmanager
    def statement_connection(self) -> Iterator[sa.Connection]:
        """PostgreSQL: a connection whose statement commits by itself (a turn taken for good)."""
        with autocommit(self.get_bind()).connect() as connection:
            yield connection


class BatchedUnit(UnitOfWork):
    """A batched unit (PostgreSQL, autocommit): reads run at once, each on its own; the rows added
    are written together by one statement (`RowBatch`) when the unit commits.

    `new_rows`: how many rows of each model the use case adds, their ids reserved by its first
    read (`id_columns`, one round trip fewer) or else when first needed."""

    batched = True

    def __init__(self, connection: sa.Connection, *, database, new_rows: dict[type, int] | None = None):
        self._connection = connection
        self._start(database)
        self.batch = RowBatch()
        self.new_rows = dict(new_rows or {})
        self._reserved: dict[type, list[int]] = {}

    def connection(self) -> sa.Connection:
        return self._connection

    def get_bind(self) -> sa.Connection:
        return self._connection

    def id_columns(self) -> list[sa.ColumnElement]:
        """Columns reserving the ids of the unit's `new_rows`, for its first read to select."""
        return _id_columns(tuple(self.new_rows.items()))

    def reserve_from(self, values) -> None:
        """The values of `id_columns` that read selected: the ids the unit gives its new rows."""
        for model, ids in ids_from(self.new_rows, values).items():
            self._reserved.setdefault(model, []).extend(ids)

    def _take_id(self, model: type, *, needed: bool) -> int | None:
        reserved = self._reserved.get(model)
        if reserved:
            return reserved.pop(0)
        if not needed:
            return None
        return allocate_ids(self, {model: 1})[model][0]

    def add(self, obj, *, with_id: bool = False):
        """The row joins the batch, with a reserved id while there is one (`with_id`: it must have one)."""
        if obj.__dict__.get("id") is None:
            new_id = self._take_id(type(obj), needed=with_id)
            if new_id is not None:
                obj.id = new_id
        self.batch.add(obj)
        return obj

    def upsert(self, statements: dict[str, sa.Insert], values: dict) -> None:
        self.batch.add_values(statements["postgresql"], values)

    def guard(self, select: sa.Select, params: dict) -> None:
        """Write the unit's rows only if `select` finds a row then (see `RowBatch.guard`); else the
        commit raises NeedsTransaction."""
        self.batch.guard(select, params)

    def require_transaction(self, why: str) -> None:
        raise NeedsTransaction(why)

    def give_ids(self, objs: list) -> None:
        for obj in objs:
            if obj.__dict__.get("id") is None:
                obj.id = self._take_id(type(obj), needed=True)

    def kept(self, obj) -> bool:
        return True

    def in_nested_transaction(self) -> bool:
        return False

    @contextmanager
    def statement_connection(self) -> Iterator[sa.Connection]:
        yield self._connection

    def commit(self) -> None:
        """Finish the collected work, then write every row in one statement (which commits)."""
        self.finish_collected()
        if not self.batch.write(self):
            raise NeedsTransaction("the guard of the batch found nothing: nothing was written")


_ID_COLUMNS: dict[tuple, list] = {}


def _id_columns(plan: tuple) -> list[sa.ColumnElement]:
    # The same columns for the same plan: a Frozen read that selects them is compiled once.
    columns = _ID_COLUMNS.get(plan)
    if columns is None:
        columns = _ID_COLUMNS[plan] = new_id_columns(dict(plan))
    return columns
