"""How a use case's facts reach the database: one call per kind of write, in every unit of work.

Domain code builds each fact once (an ORM object from its one builder function) and hands it to
`add`; the unit of work it runs in decides how the row is written:
- an ORM unit of work (`Database.unit_of_work`): the session's flush, or at once (`with_id`);
- a batched unit (`Database.capture_unit_of_work`, PostgreSQL): the row joins the unit's
  `RowBatch`, written with every other row of the use case by one statement when the unit ends,
  its id taken from the ids the unit reserved up front.
The same goes for upserts (`upsert`), a guard the write depends on (`guard`), and the work to do
once all the use case's facts are known (`collect`: the outbox events' one processing job).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from app.db.batch import RowBatch, allocate_ids
from app.db.engine import autocommit
from app.db.rows import insert_now


class AutocommitSession:
    """The part of a Session that code run in a batched unit uses: `connection()`,
    `get_bind()` (for its dialect) and `info` (after-commit hooks). There is no transaction to
    track and no ORM object to flush, and a real Session's bookkeeping around a connection in
    autocommit cost about as much as one of the statements it ran."""

    def __init__(self, connection: sa.Connection, *, database):
        self._connection = connection
        self.database = database
        self.info: dict = {}

    def connection(self) -> sa.Connection:
        return self._connection

    def get_bind(self) -> sa.Connection:
        return self._connection


class NeedsTransaction(Exception):
    """What a batched unit cannot do (a lock held across statements, a guard that found its row
    gone): the caller does the use case again in an ORM unit of work. Nothing was written."""


class BatchedSession(AutocommitSession):
    """A batched unit of work (PostgreSQL, autocommit): reads run at once, each on its own; the
    rows added are written together by one statement (`RowBatch`) when the unit ends."""

    def __init__(self, connection: sa.Connection, *, database) -> None:
        super().__init__(connection, database=database)
        self.batch = RowBatch()
        self.reserved: dict[type, list[int]] = {}
        self.collected: dict[str, tuple[list, Callable[[list], None], bool]] = {}

    def take_id(self, model: type, *, needed: bool) -> int | None:
        """A reserved id of `model`; if none is left and `needed`, one more round trip for it."""
        reserved = self.reserved.get(model)
        if reserved:
            return reserved.pop(0)
        if not needed:
            return None
        return allocate_ids(self, {model: 1})[model][0]

    def write(self) -> None:
        """Finish the collected work, then write every row in one statement."""
        _finish_all(self.collected)
        if not self.batch.write(self):
            raise NeedsTransaction("the guard of the batch found nothing: nothing was written")


@contextmanager
def batched_unit(
    database, connection: sa.Connection, *, committing: list[bool] | None = None
) -> Iterator[BatchedSession]:
    session = BatchedSession(connection, database=database)
    yield session
    if committing is not None:
        committing.append(True)  # the unit's one write commits by itself (see Database.run)
    session.write()


def _batched(session) -> BatchedSession | None:
    return session if isinstance(session, BatchedSession) else None


def add(session, obj, *, with_id: bool = False):
    """A new row (an ORM object from its fact's builder; `new_row` keeps it cheap) in the unit.

    `with_id`: its id is needed now (an event names it): an ORM unit inserts it at once, a batched
    one gives it a reserved id. A batched unit gives any row a reserved id while it has one.
    """
    batched = _batched(session)
    if batched is None:
        if with_id:
            return insert_now(session, obj)
        session.add(obj)
        return obj
    if obj.__dict__.get("id") is None:
        new_id = batched.take_id(type(obj), needed=with_id)
        if new_id is not None:
            obj.id = new_id
    batched.batch.add(obj)
    return obj


def upsert(session, statements: dict[str, sa.Insert], values: dict) -> None:
    """A row given as an INSERT ... ON CONFLICT (by dialect name: the domain's queries.py) and its
    values (the same keys on every call)."""
    statement = statements[session.get_bind().dialect.name]
    batched = _batched(session)
    if batched is None:
        session.execute(statement, values)
    else:
        batched.batch.add_values(statement, values)


def guard(session, select: sa.Select, params: dict) -> None:
    """Write the unit's rows only if `select` finds a row then (see `RowBatch.guard`); else the
    unit raises NeedsTransaction. An ORM unit of work holds its locks instead: nothing to do."""
    batched = _batched(session)
    if batched is not None:
        batched.batch.guard(select, params)


def require_transaction(session, why: str) -> None:
    """The use case needs a transaction from here on (`why`): in a batched unit, NeedsTransaction."""
    if _batched(session) is not None:
        raise NeedsTransaction(why)


def is_batched(session) -> bool:
    """For the fast statements of a domain's queries.py: whether `session` is a batched unit."""
    return _batched(session) is not None


def reserve(session, ids: dict[type, list[int]]) -> None:
    """Ids reserved up front (by a read of the use case: `new_id_columns`), for the rows to come."""
    batched = _batched(session)
    if batched is not None:
        for model, model_ids in ids.items():
            batched.reserved.setdefault(model, []).extend(model_ids)


@contextmanager
def statement_connection(session) -> Iterator[sa.Connection]:
    """PostgreSQL: a connection whose statement commits by itself (a turn taken for good): the
    batched unit's own, else one in autocommit from the session's pool."""
    batched = _batched(session)
    if batched is not None:
        yield batched.connection()
        return
    with autocommit(session.get_bind()).connect() as connection:
        yield connection


# --- work done once per unit, before it commits ---------------------------------------------------

_COLLECTED = "db.collected"  # Session.info: {key: (items, finish)} of the open transaction


def collect(session, key: str, item, finish: Callable[[list], None], *, last: bool = False) -> None:
    """Add `item` to the unit's list `key`; `finish(items)` runs once, with all of them, before the
    unit writes (a batched unit) or commits (an ORM unit: at the outermost commit, the items still
    in the session; a rolled-back transaction forgets them). A finish may collect more items.

    `last`: finished after every other key, whose finishes may add to it (the ledger's rows, which
    the events' finish adds to, go in one statement)."""
    batched = _batched(session)
    collected = batched.collected if batched is not None else session.info.setdefault(_COLLECTED, {})
    if key not in collected:
        collected[key] = ([], finish, last)
    collected[key][0].append(item)


def _finish_all(collected: dict[str, tuple[list, Callable[[list], None], bool]]) -> None:
    """Each key's finish, once, with its items: keys collected `last` after all the others, and
    keys collected by a finish too (it adds them to `collected`)."""
    while collected:
        first = [key for key, (_, _, last) in collected.items() if not last] or list(collected)
        items, finish, _ = collected.pop(first[0])
        finish(items)


def collected_items(session, key: str, *, take: bool) -> list:
    """The items of `key` collected so far in an ORM unit, for work that must be done now rather
    than before the commit; `take`: taken out (their finish will not run for them)."""
    if _batched(session) is not None:
        return []
    collected = session.info.get(_COLLECTED, {})
    entry = collected.pop(key, None) if take else collected.get(key)
    return list(entry[0]) if entry else []


def give_ids(session, objs: list) -> None:
    """The ids of rows added to the unit, known from here on (an ORM unit flushes them)."""
    batched = _batched(session)
    if batched is None:
        session.flush()
        return
    missing = [obj for obj in objs if obj.__dict__.get("id") is None]
    for obj in missing:
        obj.id = batched.take_id(type(obj), needed=True)


def kept(session, obj) -> bool:
    """Whether a row added to the unit is still to be written (a rolled-back savepoint drops its own)."""
    return _batched(session) is not None or obj in session


def finish_collected(session: Session) -> None:
    """Do the ORM unit's collected work now rather than at its commit (the job runner: a failure
    in it is then the job's failure, and a batch of jobs finishes theirs together)."""
    collected = session.info.get(_COLLECTED)
    if collected:
        _finish_all(collected)
    session.info.pop(_COLLECTED, None)


@sa_event.listens_for(Session, "before_commit")
def _finish_collected(session: Session) -> None:
    # The one listener for the work ORM units finish before they commit: it covers every Session,
    # including those not opened by a Database (tests, scripts).
    if not session.in_nested_transaction():  # a savepoint's items wait for the outermost commit
        finish_collected(session)


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_rolled_back(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_COLLECTED, None)
