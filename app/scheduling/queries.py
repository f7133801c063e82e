"""The ledger's statements that depend on the database or on the unit of work they run in."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import loaded, new_row, writes
from app.scheduling.models import ScheduledJob


def _insert_statement(dialect: str):
    # One cached statement, executemany: SQLAlchemy batches the rows into multi-row INSERTs
    # ("insertmanyvalues"). A Core INSERT on the table is a cacheable statement (the ORM-enabled bulk
    # form with RETURNING of the entity is not: SQLAlchemy rebuilds it on every call, about 5 ms each).
    # RETURNING every column: the created rows become the session's objects without a SELECT after.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = ScheduledJob.__table__
    return insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(*table.c)


_INSERT = {"postgresql": _insert_statement("postgresql"), "sqlite": _insert_statement("sqlite")}


def _insert_one_statement():
    # The dialects' INSERT ... ON CONFLICT constructs have no cache key in SQLAlchemy 2.0 (their
    # `inherit_cache = False`), so `_INSERT` is compiled again on every execution (about 0.7 ms of
    # CPU). One row, the common case, goes as the same SQL in a cacheable text() instead: typed
    # binds (JSON, UTC datetimes) and typed result columns, as the construct would have them.
    table = ScheduledJob.__table__
    columns = [column for column in table.c if not column.primary_key]
    sql = (
        f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) "
        f"VALUES ({', '.join(':' + c.name for c in columns)}) "
        f"ON CONFLICT (dedupe_key) DO NOTHING RETURNING {', '.join(c.name for c in table.c)}"
    )
    binds = [sa.bindparam(column.name, type_=column.type) for column in columns]
    return sa.text(sql).bindparams(*binds).columns(*table.c), {column.name: None for column in columns}


_INSERT_ONE, _NO_VALUES = _insert_one_statement()


def insert_new(session: Session, rows: list[dict]) -> list[ScheduledJob]:
    """INSERT the rows (values by column) whose dedupe_key is new, in an ORM unit of work; returns
    the created ones as the session's objects."""
    dialect = session.get_bind().dialect.name
    if dialect in _INSERT:
        session.flush()  # the rows may refer to objects still pending in this session
        created = []
        # One row (the common case) as a plain execute: the executemany path costs about three times more.
        if len(rows) == 1:
            result = session.execute(_INSERT_ONE, {**_NO_VALUES, **rows[0]})
        else:
            result = session.execute(_INSERT[dialect], rows)
        for row in sorted(result, key=lambda r: r.id):
            created.append(loaded(session, ScheduledJob, row))  # as if loaded (like claim() does)
        return created
    created = []  # any other database: one savepoint per row
    for values in rows:
        try:
            with session.begin_nested():
                job = ScheduledJob(**values)
                session.add(job)
        except sa.exc.IntegrityError:
            continue
        created.append(job)
    return created


def for_update(session: Session, stmt: sa.Select) -> sa.Select:
    """`stmt` locking its rows where the database has row locks (SQLite serialises every writer)."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update()
    return stmt


def written_with_the_unit(session) -> bool:
    """Whether the unit of work writes its rows in one statement at its end (a batched unit): a
    ledger row then goes in with them, its dedupe_key new by construction (no ON CONFLICT)."""
    return writes.is_batched(session)


def add_to_unit(session, values: dict) -> ScheduledJob:
    """One ledger row (values by column) added to a batched unit, with a reserved id."""
    return writes.add(session, new_row(ScheduledJob, **values), with_id=True)
