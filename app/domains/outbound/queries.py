"""SQL of the notifications domain with a name of its own, and the one place that needs a dialect."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.domains.outbound.models import Notification, waiting_hold
from app.platform.db import UnitOfWork
from app.platform.db.protected import ENCRYPTED_TYPES, EncryptedJSON


def by_dedupe_key(session: UnitOfWork, dedupe_key: str) -> Notification | None:
    """The notification with that dedupe key, if any."""
    return session.scalar(sa.select(Notification).where(Notification.dedupe_key == dedupe_key))


def _insert_statement(dialect: str):
    # Built once per dialect: a Core INSERT on the table is a cached statement, and executemany turns
    # it into multi-row INSERTs ("insertmanyvalues"). DO NOTHING: a twin leaves the transaction intact.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = Notification.__table__
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id, table.c.dedupe_key, table.c.clinic_id, table.c.next_attempt_at)
    )


_INSERT = {name: _insert_statement(name) for name in ("postgresql", "sqlite")}


def can_insert_many(session: UnitOfWork) -> bool:
    """Whether the database has INSERT ... ON CONFLICT DO NOTHING (else messages go one by one)."""
    return session.get_bind().dialect.name in _INSERT


def insert_many(session: UnitOfWork, rows: list[dict]) -> list:
    """Insert notification rows, skipping any whose dedupe key exists; (id, dedupe_key, clinic_id,
    next_attempt_at) of each row it created."""
    session.flush()  # rows may refer to objects still pending in this session (a new clinic, a lead)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and rows:
        return _insert_unnest(session, rows)
    return session.execute(_INSERT[dialect], rows).all()


# PostgreSQL: one INSERT ... SELECT FROM unnest(one array per column), whatever the number of rows. A
# multi-row VALUES list has a bind parameter per value, and psycopg rewrites such a statement's
# placeholders in Python every time (it is too long for its cache): about a quarter of a millisecond
# per row, more than rendering the message.
# A memo of compiled SQL, a pure function of the code and the schema: no engine's state (app/bootstrap.py).
_UNNEST: dict[tuple[str, ...], sa.TextClause] = {}


def _insert_unnest(session: UnitOfWork, rows: list[dict]) -> list:
    columns = tuple(rows[0])
    statement = _UNNEST.get(columns)
    if statement is None:
        statement = _UNNEST[columns] = _unnest_statement(columns)
    params = {name: _column_values(session, name, [row[name] for row in rows]) for name in columns}
    return session.execute(statement, params).all()


def _column_values(session: UnitOfWork, name: str, values: list) -> list:
    """Values as the text SQL must carry them: text SQL skips the columns' types, so protected values
    are encrypted here as their types would, and JSONB travels as text cast with the rest."""
    column = Notification.__table__.c[name]
    if isinstance(column.type, ENCRYPTED_TYPES):
        dialect = session.get_bind().dialect
        values = [None if v is None else column.type.process_bind_param(v, dialect) for v in values]
    if isinstance(column.type, EncryptedJSON):
        values = [None if v is None else json.dumps(v) for v in values]
    return values


def _unnest_statement(columns: tuple[str, ...]) -> sa.TextClause:
    table, dialect = Notification.__table__, postgresql.dialect()
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(dialect=dialect)}[])" for name in columns
    )
    return sa.text(
        f"INSERT INTO {table.name} ({', '.join(table.c[name].name for name in columns)}) "
        f"SELECT * FROM unnest({arrays}) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key, clinic_id, next_attempt_at"
    ).columns(table.c.id, table.c.dedupe_key, table.c.clinic_id, table.c.next_attempt_at)


def holds_of(session: UnitOfWork, notification_ids: list[int]) -> dict[int, dict]:
    """The holds (models.waiting_hold) of the messages still held back among `notification_ids`."""
    if not notification_ids:
        return {}
    columns = (
        Notification.status,
        Notification.next_attempt_at,
        Notification.held_until,
        Notification.held_by,
    )
    rows = session.execute(
        sa.select(Notification.id, *columns).where(
            Notification.id.in_(notification_ids), Notification.held_until.is_not(None)
        )
    ).all()
    holds = {row.id: waiting_hold(row) for row in rows}
    return {key: hold for key, hold in holds.items() if hold["held_until"] is not None}
