"""Rows without the ORM's bookkeeping: new objects with their defaults, objects built as if loaded."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class

# A memo of compiled SQL, a pure function of the code and the schema: no engine's state (app/bootstrap.py).
_INSERTS: dict[type, tuple[sa.Insert, list[tuple[str, sa.Column]]]] = {}


def _insert_of(model: type) -> tuple[sa.Insert, list[tuple[str, sa.Column]]]:
    """The model's `INSERT ... RETURNING *` (built once) and its (attribute, column) pairs."""
    cached = _INSERTS.get(model)
    if cached is None:
        mapper = sa.inspect(model)
        table = mapper.local_table
        pairs = [(prop.key, prop.columns[0]) for prop in mapper.column_attrs]
        cached = _INSERTS[model] = (sa.insert(table).returning(*table.c), pairs)
    return cached


# A memo of compiled SQL, a pure function of the code and the schema: no engine's state (app/bootstrap.py).
_COLUMN_DEFAULTS: dict[type, list[tuple[str, str, object]]] = {}


def _column_defaults(model: type) -> list[tuple[str, str, object]]:
    """(attribute, column, default factory) of each non-key column of `model`, worked out once."""
    cached = _COLUMN_DEFAULTS.get(model)
    if cached is None:
        cached = []
        for prop in sa.inspect(model).column_attrs:
            column = prop.columns[0]
            if column.primary_key:
                continue  # a key not given is the database's to assign
            default = column.default
            if default is None:
                factory = _no_value
            elif default.is_callable:
                factory = functools.partial(default.arg, None)
            else:
                factory = functools.partial(_constant, default.arg)
            cached.append((prop.key, column.key, factory))
        _COLUMN_DEFAULTS[model] = cached
    return cached


def _no_value():
    return None


def _constant(value):
    return value


def new_row(model: type, **values):
    """A new ORM object with every column set: the given values, else the column's Python default.

    Rows written without the ORM's flush (`insert_now`) skip what would apply the defaults; with
    every column set, the statement of a table has one shape, built and compiled once.
    """
    for key, _, factory in _column_defaults(model):
        if key not in values:
            values[key] = factory()
    return _instance(model, values)


def _instance(model: type, values: dict):
    """A transient `model` object holding `values` (by attribute), built as the ORM builds a loaded
    one: the values go straight into its __dict__ instead of through each attribute's setter
    (instrumented: tracked changes and events), which cost more than the rest of a capture's
    Python. The object reads like any other; it has no pending changes to flush."""
    obj = manager_of_class(model).new_instance()
    obj.__dict__.update(values)
    return obj


def row_values(model: type, **values) -> dict:
    """`new_row` without the ORM object: the row's values by column name (for a Core INSERT)."""
    row = {}
    for key, column, factory in _column_defaults(model):
        row[column] = values.pop(key) if key in values else factory()
    if values:  # what is left is the key, or a mistake
        unknown = set(values) - {c.key for c in sa.inspect(model).primary_key}
        if unknown:
            raise TypeError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
        row.update(values)
    return row


def loaded(session: Session, model: type, row: sa.Row):
    """A `model` object from a RETURNING * or SELECT * `row`, persistent in `session` as if the ORM
    had loaded it (cheaper than the constructor: no setter, history or event per attribute)."""
    mapping = row._mapping
    values = {key: mapping[column] for key, column in _insert_of(model)[1]}
    mapper = sa.inspect(model)
    key = mapper.identity_key_from_primary_key(
        [values[mapper.get_property_by_column(column).key] for column in mapper.primary_key]
    )
    present = session.identity_map.get(key)
    if present is not None:
        return present  # as the ORM does: the session's object wins over a fresh row
    obj = _instance(model, values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def detached_copy(model: type, values: dict):
    """A `model` object from its table's columns in `values` (by Column; other tables' may be
    there too), outside any session: for reading, when an ORM load would cost more than the query."""
    return _instance(model, {key: values[column] for key, column in _insert_of(model)[1]})


# A memo of compiled SQL, a pure function of the code and the schema: no engine's state (app/bootstrap.py).
_PLAIN_INSERTS: dict[type, sa.Insert] = {}


def plain_insert_of(model: type) -> sa.Insert:
    if model not in _PLAIN_INSERTS:
        _PLAIN_INSERTS[model] = sa.insert(model.__table__)
    return _PLAIN_INSERTS[model]


def column_values(obj) -> dict:
    state = obj.__dict__
    return {column.key: state[key] for key, column in _insert_of(type(obj))[1] if key in state}
