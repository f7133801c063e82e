"""SQL of the notifications domain with a name of its own, and the one place that needs a dialect."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.notifications.models import Notification


def by_dedupe_key(session: Session, dedupe_key: str) -> Notification | None:
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


def can_insert_many(session: Session) -> bool:
    """Whether the database has INSERT ... ON CONFLICT DO NOTHING (else messages go one by one)."""
    return session.get_bind().dialect.name in _INSERT


def insert_many(session: Session, rows: list[dict]) -> list:
    """Insert notification rows, skipping any whose dedupe key exists; (id, dedupe_key, clinic_id,
    next_attempt_at) of each row it created."""
    session.flush()  # rows may refer to objects still pending in this session (a new clinic, a lead)
    return session.execute(_INSERT[session.get_bind().dialect.name], rows).all()
