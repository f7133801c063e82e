"""New rows written without the ORM's flush: one at once (`insert_now`), or all of a unit's new rows
in one statement at its flush (`write_new_rows`, PostgreSQL).

Why: a use case adds a handful of rows to as many tables (a capture: its stage stay, audit record,
events, stream entry); the ORM's flush writes each table with a statement of its own, and its
bookkeeping per object costs more than the database's work. Here every new row of a table goes
into one INSERT, the tables' INSERTs chained as data-modifying CTEs of one statement (compiled once
per shape: the tables and their row counts) that hands back the ids the rows were given. As a flush
does, each column is sent (a Python default where the object has none) and only the id read back.

Only for what the ORM would write the same way: new rows of plain tables (a serial key not given,
no inheritance, no relationship set on them), when nothing loaded is changed or deleted (the ORM
orders those with the inserts). Anything else, and SQLite (no INSERT in a CTE), flushes as usual.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, make_transient_to_detached

from app.platform.db.batch import Frozen

_STATEMENTS: dict[tuple, Frozen] = {}  # by shape: ((model, row count), ...)
_PLANS: dict[type, tuple | None] = {}


def insert_now(session: Session, obj):
    """INSERT one new ORM object at once and make it persistent, its id known from here on.

    Why not `session.add(obj); session.flush()`: a flush also writes everything else pending, where
    what is left pending goes out with the unit's other new rows in one statement."""
    plan = _plan(type(obj))
    if plan is None or not _plain(obj, plan) or session.get_bind().dialect.name != "postgresql":
        session.add(obj)
        session.flush([obj])
        return obj
    [(ids,)] = _statement(((type(obj), 1),)).execute(session.connection(), _values(obj, 0))
    _persistent(session, obj, plan[0], ids[0])
    return obj


def write_new_rows(session: Session) -> bool:
    """INSERT the session's new objects in one statement and make them persistent, as a flush
    would; False (nothing done) when the ORM's own flush must write them."""
    if session.get_bind().dialect.name != "postgresql" or session.dirty or session.deleted:
        return False
    new = sorted(session.new, key=lambda obj: sa.inspect(obj).insert_order)
    if len(new) < 2:
        return False  # one row is one statement either way
    by_model: dict[type, list] = defaultdict(list)
    for obj in new:
        plan = _plan(type(obj))
        if plan is None or not _plain(obj, plan):
            return False
        by_model[type(obj)].append(obj)
    params = {}
    for objs in by_model.values():
        for index, obj in enumerate(objs):
            params.update(_values(obj, index))
    shape = tuple((model, len(objs)) for model, objs in by_model.items())
    [ids] = _statement(shape).execute(session.connection(), params)
    for (model, objs), reserved in zip(by_model.items(), ids, strict=True):
        # One multi-row INSERT takes its ids from the sequence in the order of its rows.
        for obj, new_id in zip(objs, sorted(reserved), strict=True):
            _persistent(session, obj, _plan(model)[0], new_id)
    return True


def _persistent(session: Session, obj, key: str, new_id: int) -> None:
    """`obj`, just written with `new_id`, as if loaded: in the session, no pending changes."""
    if obj in session:
        session.expunge(obj)
    obj.__dict__[key] = new_id
    make_transient_to_detached(obj)
    session.add(obj)


def _plan(model: type) -> tuple | None:
    """(key attribute, [(attribute, column, default)], relationship keys) of a plain table's model,
    worked out once; None for one the ORM must write (inheritance, a composite or no serial key, a
    default computed by SQL, an attribute that is no column of its table)."""
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
            plan = (key, columns, [rel.key for rel in mapper.relationships])
    _PLANS[model] = plan
    return plan


def _plain(obj, plan: tuple) -> bool:
    """No key given and no relationship set: the ORM would have nothing to order or sync."""
    key, _, relationships = plan
    state = obj.__dict__
    return state.get(key) is None and not any(name in state for name in relationships)


def _bind_name(table: sa.Table, index: int, column: sa.Column) -> str:
    return f"{table.name}_{index}_{column.key}"


def _values(obj, index: int) -> dict:
    """The object's column values as the statement's parameters (its row `index` of its table), a
    column's Python default where the object has none (set into the object too, as a flush does)."""
    _, columns, _ = _plan(type(obj))
    table = type(obj).__table__
    state = obj.__dict__
    values = {}
    for attribute, column, default in columns:
        if attribute not in state:
            value = None
            if default is not None:
                value = default.arg(None) if default.is_callable else default.arg
            state[attribute] = value
        values[_bind_name(table, index, column)] = state[attribute]
    return values


def _statement(shape: tuple) -> Frozen:
    """WITH w0 AS (INSERT ... VALUES (...), ... RETURNING id), w1 AS (...) SELECT the ids of each."""
    stmt = _STATEMENTS.get(shape)
    if stmt is None:
        ids = []
        for n, (model, count) in enumerate(shape):
            table = model.__table__
            columns = [column for _, column, _ in _plan(model)[1]]
            rows = [
                {
                    column: sa.bindparam(_bind_name(table, index, column), type_=column.type)
                    for column in columns
                }
                for index in range(count)
            ]
            written = sa.insert(table).values(rows).returning(*table.primary_key).cte(f"w{n}")
            ids.append(sa.select(sa.func.array_agg(written.c[0], type_=ARRAY(sa.Integer))).scalar_subquery())
        stmt = _STATEMENTS[shape] = Frozen(sa.select(*ids))
    return stmt
