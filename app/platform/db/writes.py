"""New rows written without the ORM's flush: one at once (`insert_now`), one unless a row holds its
unique value already (`insert_once`), or all of a unit's new rows in one statement at its flush
(`WritesTogether`, the Session a unit of work holds: PostgreSQL).

Why: a use case adds a handful of rows to as many tables (a capture: its stage stay, audit record,
events, stream entry); the ORM's flush writes each table with a statement of its own, and its
bookkeeping per object costs more than the database's work. Here every new row of a table goes
into one INSERT, the tables' INSERTs chained as data-modifying CTEs of one statement (compiled once
per shape: the tables, their row counts, whether their keys are given) that hands back the ids the
rows were given. As a flush does, each column is sent (a Python default where the object has none)
and only the id read back.

Only a unit of up to MAX_ROWS_TOGETHER new rows, and the most recent SHAPES_KEPT shapes kept: a
shape's statement holds a bind parameter per row and column (about half a megabyte for 50 audit
records and 50 events), and a sweep whose batches come in ever new sizes made a new one each run,
kept for ever (what the sweeps process' growth in bench/soak was: docs/performance.md). A larger unit
is a batch, for which the ORM's flush (one multi-row INSERT a table) costs little beside its rows.

Only for what the ORM would write the same way: new rows of plain tables (one serial key, no
inheritance, no relationship set on them), nothing deleted (the ORM deletes after it inserts), no
savepoint open (see `_outside_savepoints`).
Changed rows are flushed first, as the ORM orders a table's updates before its inserts; anything
else, and SQLite (no INSERT in a CTE), flushes as usual.
"""

from __future__ import annotations

import functools
import warnings
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError, SADeprecationWarning
from sqlalchemy.orm import Session, make_transient_to_detached

from app.platform.db.batch import Frozen

# A capture's flushes write 5 and 7 new rows, a new lead's job or an SLA breach's at most 10
# (bench/automation_profile): a unit of more is a batch.
MAX_ROWS_TOGETHER = 64
SHAPES_KEPT = 128
# A memo of compiled SQL, a pure function of the code and the schema: no engine's state (app/bootstrap.py).
_ONCE: dict[tuple[type, str], Frozen] = {}  # insert_once's, by (model, unique column)
_PLANS: dict[type, tuple | None] = {}

# `WritesTogether.flush` flushes the changed rows before it writes the new ones, through
# `Session.flush(objects)`: SQLAlchemy 2.1 deprecates that parameter but keeps it. Said here once,
# not as a warning in the log of every request that writes.
warnings.filterwarnings(
    "ignore", message="The `objects` parameter of `Session.flush`", category=SADeprecationWarning
)


class WritesTogether(Session):
    """The Session a unit of work holds (app/platform/db/uow.py): its flush, the explicit one and
    the one before a query (autoflush), writes the new rows in one statement where it can, after
    the changed rows, as the ORM orders them."""

    def flush(self, objects=None) -> None:
        new = rows_to_write_together(self) if objects is None else None
        if new is None:
            super().flush() if objects is None else super().flush(objects)
            return
        changed = list(self.dirty)
        if changed:
            super().flush(changed)
        write_together(self, new)


def insert_now(session: Session, obj):
    """INSERT one new ORM object at once and make it persistent, its id known from here on.

    Why not `session.add(obj); session.flush()`: a flush also writes everything else pending, where
    what is left pending goes out with the unit's other new rows in one statement."""
    if not _outside_savepoints(session) or not _plain(obj):
        session.add(obj)
        session.flush([obj])
        return obj
    _write(session, {type(obj): [obj]})
    return obj


def insert_once(session: Session, obj, *, unique: str):
    """INSERT one new ORM object unless a row holds its `unique` column's value already (an earlier
    run's, a concurrent twin's): the object, persistent with its id; None when such a row exists.

    One statement, INSERT ... ON CONFLICT (unique) DO NOTHING RETURNING its key, where a lookup first
    and the insert in a savepoint (a twin's unique violation would abort the whole transaction) are
    four round trips. The unit's pending rows are flushed first (the row may refer to them), as the
    lookup's autoflush did. In a savepoint, on SQLite or for a table the ORM must write, the
    savepoint's way."""
    session.flush()
    if not _outside_savepoints(session) or not _plain(obj):
        try:
            with session.begin_nested():
                session.add(obj)
        except IntegrityError:
            return None
        return obj
    key = _plan(type(obj))[0]
    rows = _once_statement(type(obj), unique).execute(session.connection(), _values(obj, 0))
    if not rows:
        return None
    _persistent(session, obj, key, rows[0][0])
    return obj


def _once_statement(model: type, unique: str) -> Frozen:
    stmt = _ONCE.get((model, unique))
    if stmt is None:
        _, key_column, columns, _ = _plan(model)
        table = model.__table__
        values = {
            column: sa.bindparam(_bind_name(table, 0, column), type_=column.type) for _, column, _ in columns
        }
        stmt = _ONCE[(model, unique)] = Frozen(
            postgresql.insert(table)
            .values(values)
            .on_conflict_do_nothing(index_elements=[table.c[unique]])
            .returning(key_column)
        )
    return stmt


def rows_to_write_together(session: Session) -> list | None:
    """The session's new objects, in the order added, if one statement can write them as the ORM's
    flush would (PostgreSQL, outside savepoints, two or more, all plain, the keys of a table's all
    given or none, nothing deleted, no changed object with a relationship set); else None."""
    if not _outside_savepoints(session) or session.deleted or not 2 <= len(session.new) <= MAX_ROWS_TOGETHER:
        return None
    new = sorted(session.new, key=lambda obj: sa.inspect(obj).insert_order)
    keyed: dict[type, bool] = {}
    for obj in new:
        if not _plain(obj) or keyed.setdefault(type(obj), _keyed(obj)) != _keyed(obj):
            return None
    for obj in session.dirty:
        if any(rel.key in obj.__dict__ for rel in sa.inspect(type(obj)).relationships):
            return None
    return new


def write_together(session: Session, new: list) -> None:
    """INSERT `new` (from `rows_to_write_together`) in one statement and make them persistent."""
    by_model: dict[type, list] = defaultdict(list)
    for obj in new:
        by_model[type(obj)].append(obj)
    _write(session, by_model)


def _write(session: Session, by_model: dict[type, list]) -> None:
    shape = tuple((model, len(objs), _keyed(objs[0])) for model, objs in by_model.items())
    params = {}
    for objs in by_model.values():
        for index, obj in enumerate(objs):
            params.update(_values(obj, index))
    [ids] = _statement(shape).execute(session.connection(), params)
    for (model, objs), (_, _, keyed), written in zip(by_model.items(), shape, ids, strict=True):
        key = _plan(model)[0]
        # Keys not given: one multi-row INSERT takes them from the sequence in the order of its rows.
        new_ids = [obj.__dict__[key] for obj in objs] if keyed else sorted(written)
        for obj, new_id in zip(objs, new_ids, strict=True):
            _persistent(session, obj, key, new_id)


def _outside_savepoints(session: Session) -> bool:
    """PostgreSQL, and no savepoint open: a savepoint rolled back forgets the rows the ORM inserted
    in it (they leave the session, as if never added), and only its own flush tells it which."""
    return session.get_bind().dialect.name == "postgresql" and not session.in_nested_transaction()


def _persistent(session: Session, obj, key: str, new_id: int) -> None:
    """`obj`, just written with `new_id`, as if loaded: in the session, no pending changes."""
    if obj in session:
        session.expunge(obj)
    obj.__dict__[key] = new_id
    make_transient_to_detached(obj)
    session.add(obj)


def _plan(model: type) -> tuple | None:
    """(key attribute, key column, [(attribute, column, default)], relationship keys) of a plain
    table's model, worked out once; None for one the ORM must write (inheritance, a composite or
    no serial key, a default computed by SQL, an attribute that is no column of its table)."""
    if model in _PLANS:
        return _PLANS[model]
    mapper = sa.inspect(model)
    table = mapper.local_table
    keys = list(table.primary_key.columns)
    plan = None
    own_columns = all(getattr(prop.columns[0], "table", None) is table for prop in mapper.column_attrs)
    if own_columns and mapper.inherits is None and len(keys) == 1 and keys[0].autoincrement in (True, "auto"):
        columns = [
            (prop.key, prop.columns[0], prop.columns[0].default)
            for prop in mapper.column_attrs
            if not prop.columns[0].primary_key
        ]
        if all(default is None or default.is_callable or default.is_scalar for _, _, default in columns):
            key = mapper.get_property_by_column(keys[0]).key
            plan = (key, keys[0], columns, [rel.key for rel in mapper.relationships])
    _PLANS[model] = plan
    return plan


def _plain(obj) -> bool:
    """A plain table's row with no relationship set: the ORM would have nothing to order or sync."""
    plan = _plan(type(obj))
    return plan is not None and not any(name in obj.__dict__ for name in plan[3])


def _keyed(obj) -> bool:
    return obj.__dict__.get(_plan(type(obj))[0]) is not None


def _bind_name(table: sa.Table, index: int, column: sa.Column) -> str:
    return f"{table.name}_{index}_{column.key}"


def _values(obj, index: int) -> dict:
    """The object's column values as the statement's parameters (its row `index` of its table), a
    column's Python default where the object has none (set into the object too, as a flush does)."""
    key, key_column, columns, _ = _plan(type(obj))
    table = type(obj).__table__
    state = obj.__dict__
    values = {}
    if state.get(key) is not None:
        values[_bind_name(table, index, key_column)] = state[key]
    for attribute, column, default in columns:
        if attribute not in state:
            value = None
            if default is not None:
                value = default.arg(None) if default.is_callable else default.arg
            state[attribute] = value
        values[_bind_name(table, index, column)] = state[attribute]
    return values


@functools.lru_cache(maxsize=SHAPES_KEPT)
def _statement(shape: tuple) -> Frozen:
    """WITH w0 AS (INSERT ... VALUES (...), ... RETURNING id), w1 AS (...) SELECT the ids of each."""
    ids = []
    for n, (model, count, keyed) in enumerate(shape):
        _, key_column, columns, _ = _plan(model)
        table = model.__table__
        written = [key_column] * keyed + [column for _, column, _ in columns]
        rows = [
            {column: sa.bindparam(_bind_name(table, index, column), type_=column.type) for column in written}
            for index in range(count)
        ]
        inserted = sa.insert(table).values(rows).returning(key_column).cte(f"w{n}")
        ids.append(sa.select(sa.func.array_agg(inserted.c[0], type_=ARRAY(sa.Integer))).scalar_subquery())
    return Frozen(sa.select(*ids))
