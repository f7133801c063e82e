"""Rows that add to counts, and rows written once, many at a time: the statements a counting job
runs for every lead it counts, compiled once per table and dialect (`Frozen`: SQLAlchemy caches
no statement with an ON CONFLICT clause and would compile one on every execution)."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.platform.db.batch import Frozen

_DIALECTS = {"postgresql": postgresql, "sqlite": sqlite}


def add_to_rows(session, table: sa.Table, rows: list[dict]) -> None:
    """Add each row's values to the row of `table` with its primary key (made at its values if
    missing), in the rows' order: every column not in the key is a count."""
    statement, connection = _add_to(table, session.get_bind().dialect.name), session.connection()
    for row in rows:
        statement.execute(connection, row)


def insert_absent(session, table: sa.Table, rows: list[dict], *, unique: str) -> set:
    """Insert the rows whose `unique` value no row holds yet; the `unique` values inserted (a
    concurrent insert of the same value waits for the other transaction, then leaves it the row)."""
    statement = _insert_absent(table, unique, session.get_bind().dialect.name)
    connection = session.connection()
    return {found[0] for row in rows for found in statement.execute(connection, row)}


def _row_values(table: sa.Table) -> dict:
    return {c.name: sa.bindparam(c.name, type_=c.type) for c in table.columns}


@functools.cache  # by table and dialect: a few statements, for the life of the process
def _add_to(table: sa.Table, dialect: str) -> Frozen:
    insert = _DIALECTS[dialect].insert(table).values(_row_values(table))
    key = [c.name for c in table.primary_key.columns]
    added = {c.name: table.c[c.name] + insert.excluded[c.name] for c in table.columns if not c.primary_key}
    return Frozen(insert.on_conflict_do_update(index_elements=key, set_=added))


@functools.cache
def _insert_absent(table: sa.Table, unique: str, dialect: str) -> Frozen:
    insert = _DIALECTS[dialect].insert(table).values(_row_values(table))
    return Frozen(insert.on_conflict_do_nothing(index_elements=[unique]).returning(table.c[unique]))
