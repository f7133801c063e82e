"""Statements of the delivery primitive that need a dialect: a batch's outcomes written in one."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.platform.db import UnitOfWork
from app.platform.delivery.service import SENDING

# A memo of compiled SQL, a pure function of the code and the schema: no engine's state (app/bootstrap.py).
_STATEMENTS: dict[tuple[str, str, tuple[str, ...]], sa.TextClause | sa.Update] = {}


def settle_many(
    session: UnitOfWork, table: sa.Table, outcomes: list[dict], columns: tuple[str, ...]
) -> list[int]:
    """Write each outcome (a dict: `id`, `attempt`, and a value for each of `columns`) to its row, only
    where the row is still that attempt's (`sending`, the same attempts): a compare-and-set per row,
    as `settled` does for one. Returns the ids written (the others were stale).

    PostgreSQL: one UPDATE ... FROM unnest(arrays) for the whole batch, one round trip. SQLite: the
    compare-and-set row by row (an in-process database has no round trips to save)."""
    if not outcomes:
        return []
    connection = session.connection()
    dialect = connection.dialect.name
    key = (dialect, table.name, columns)
    statement = _STATEMENTS.get(key)
    if statement is None:
        build = _unnest_update if dialect == "postgresql" else _row_update
        statement = _STATEMENTS[key] = build(table, columns)
    if dialect == "postgresql":
        params = {"b_sending": SENDING, "b_id": [o["id"] for o in outcomes]}
        params["b_attempt"] = [o["attempt"] for o in outcomes]
        params.update({f"v_{name}": [o[name] for o in outcomes] for name in columns})
        return list(connection.execute(statement, params).scalars())
    written = []
    for outcome in outcomes:
        params = {"row_id": outcome["id"], "attempt": outcome["attempt"]}
        params.update({f"v_{name}": outcome[name] for name in columns})
        if connection.execute(statement, params).rowcount == 1:
            written.append(outcome["id"])
    return written


def _unnest_update(table: sa.Table, columns: tuple[str, ...]) -> sa.TextClause:
    # Each array is cast to its column's type: a column of NULLs (no row sent) still has one.
    dialect = postgresql.dialect()
    arrays = [f"CAST(:b_id AS {table.c.id.type.compile(dialect=dialect)}[])", "CAST(:b_attempt AS INTEGER[])"]
    arrays += [f"CAST(:v_{name} AS {table.c[name].type.compile(dialect=dialect)}[])" for name in columns]
    names = ", ".join(columns)
    sets = ", ".join(f"{name} = v.{name}" for name in columns)
    return sa.text(
        f"UPDATE {table.name} AS t SET {sets} "
        f"FROM unnest({', '.join(arrays)}) AS v(id, attempt, {names}) "
        "WHERE t.id = v.id AND t.status = :b_sending AND t.attempts = v.attempt "
        "RETURNING t.id"
    )


def _row_update(table: sa.Table, columns: tuple[str, ...]) -> sa.Update:
    c = table.c
    return (
        sa.update(table)
        .where(c.id == sa.bindparam("row_id"), c.status == SENDING, c.attempts == sa.bindparam("attempt"))
        .values({name: sa.bindparam(f"v_{name}", type_=c[name].type) for name in columns})
    )
