"""The ledger's statements that depend on the database or on the unit of work they run in."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from app.platform.db import Frozen, UnitOfWork, allocate_ids, loaded
from app.platform.scheduling.models import ScheduledJob, ScheduledJobKey

_JOBS = ScheduledJob.__table__
_KEYS = ScheduledJobKey.__table__


# --- writing rows: each dedupe_key once (its row in scheduled_job_keys first) ----------------------

# The columns a new row is written with, in the order of the arrays below.
_ROW_COLUMNS = (
    "clinic_id", "kind", "queue", "subject_type", "subject_id", "payload", "due_at", "status",
    "dispatched_at", "attempts", "max_attempts", "dedupe_key", "origin", "created_at", "trace_parent",
)  # fmt: skip
_ARRAY_TYPES = {
    "clinic_id": "integer", "kind": "varchar", "queue": "varchar", "subject_type": "varchar",
    "subject_id": "integer", "payload": "text", "due_at": "timestamptz", "status": "varchar",
    "dispatched_at": "timestamptz", "attempts": "integer", "max_attempts": "integer",
    "dedupe_key": "varchar", "origin": "text", "created_at": "timestamptz", "trace_parent": "varchar",
}  # fmt: skip


def _insert_from_arrays(returning: str) -> str:
    """PostgreSQL, one statement: the keys that are new take an id from the ledger's sequence
    (ON CONFLICT on the keys' unique index, global whatever the partitions), and only their rows
    are inserted. Every column goes as one array (the statement is short and the same every time);
    the caller gives each dedupe_key once (`_first_of_each_key`)."""
    arrays = ", ".join(f"CAST(:{name} AS {_ARRAY_TYPES[name]}[])" for name in _ROW_COLUMNS)
    values = ", ".join(
        f"r.{name}::jsonb" if name in ("payload", "origin") else f"r.{name}" for name in _ROW_COLUMNS
    )
    return f"""
    WITH r AS (
        SELECT * FROM unnest({arrays}) WITH ORDINALITY AS r({", ".join(_ROW_COLUMNS)}, n)
    ), new_keys AS (
        INSERT INTO scheduled_job_keys (dedupe_key, job_id)
        SELECT r.dedupe_key, nextval('scheduled_jobs_id_seq') FROM r ORDER BY r.n
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING dedupe_key, job_id
    )
    INSERT INTO scheduled_jobs (id, {", ".join(_ROW_COLUMNS)})
    SELECT k.job_id, {values} FROM r JOIN new_keys k ON k.dedupe_key = r.dedupe_key
    RETURNING {returning}
    """


# RETURNING every column: the created rows become the session's objects without a SELECT after.
_INSERT_ROWS = sa.text(_insert_from_arrays(", ".join(c.name for c in _JOBS.c))).columns(*_JOBS.c)


class CreatedJob(NamedTuple):
    """A row nobody needs back as an object (a unit's jobs, written at its commit by
    `Job.write_all`): what publishing it takes."""

    id: int
    status: str
    queue: str
    due_at: datetime
    kind: str
    subject_type: str | None
    subject_id: int | None


# Compiled once and run on the driver: every capture and every job that schedules runs it.
_INSERT_PLAIN = Frozen(
    sa.text(_insert_from_arrays(", ".join(CreatedJob._fields))).columns(
        *(_JOBS.c[name] for name in CreatedJob._fields)
    )
)


def _first_of_each_key(rows: list[dict]) -> list[dict]:
    """The rows without a repeated dedupe_key (the first one stays, as ON CONFLICT would keep it)."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        if row["dedupe_key"] not in seen:
            seen.add(row["dedupe_key"])
            kept.append(row)
    return kept


def _arrays(rows: list[dict]) -> dict[str, list]:
    columns = {name: [row.get(name) for row in rows] for name in _ROW_COLUMNS}
    for name in ("payload", "origin"):
        columns[name] = [None if value is None else json.dumps(value) for value in columns[name]]
    columns["attempts"] = [value or 0 for value in columns["attempts"]]
    return columns


_NEW_KEYS = sqlite.insert(_KEYS).on_conflict_do_nothing().returning(_KEYS.c.dedupe_key, _KEYS.c.job_id)
_INSERT_WITH_IDS = sa.insert(_JOBS).returning(*_JOBS.c)


def _insert_elsewhere(session: UnitOfWork, rows: list[dict]) -> list:
    """SQLite (its writers serialised: BEGIN IMMEDIATE, app/platform/db/engine.py): ids for the rows, their
    keys (those already there skipped), then the rows of the keys that were new."""
    ids = allocate_ids(session, {ScheduledJob: len(rows)})[ScheduledJob]
    by_key = {row["dedupe_key"]: {**row, "id": job_id} for row, job_id in zip(rows, ids, strict=True)}
    keys = [{"dedupe_key": key, "job_id": row["id"]} for key, row in by_key.items()]
    new = session.execute(_NEW_KEYS, keys).all()
    if not new:
        return []
    return session.execute(_INSERT_WITH_IDS, [by_key[key] for key, _ in new]).all()


def insert_new(session: UnitOfWork, rows: list[dict]) -> list[ScheduledJob]:
    """INSERT the rows (values by column) whose dedupe_key is new, in an ORM unit of work; returns
    the created ones as the session's objects."""
    created = _insert_new(session, rows, lambda arrays: session.execute(_INSERT_ROWS, arrays).all())
    # As if loaded (like claim() does): the session's objects, no SELECT after.
    return [loaded(session, ScheduledJob, row) for row in created]


def insert_new_plain(session: UnitOfWork, rows: list[dict]) -> list[CreatedJob]:
    """`insert_new` for rows nobody needs back as objects: the created rows as `CreatedJob`s."""

    def on_postgresql(arrays: dict) -> list[CreatedJob]:
        return [CreatedJob(*row) for row in _INSERT_PLAIN.execute(session.connection(), arrays)]

    return _insert_new(session, rows, on_postgresql)


def _insert_new(session: UnitOfWork, rows: list[dict], on_postgresql: Callable[[dict], list]) -> list:
    """The rows created, by id: `on_postgresql(arrays)` runs the statement there (`_arrays`)."""
    session.flush()  # the rows may refer to objects still pending in this session
    rows = _first_of_each_key(rows)
    if session.get_bind().dialect.name == "postgresql":
        result = on_postgresql(_arrays(rows))
    else:
        result = _insert_elsewhere(session, rows)
    return sorted(result, key=lambda row: row.id)


def existing(session: UnitOfWork, dedupe_key: str) -> ScheduledJob:
    """The row scheduled under `dedupe_key`, found through its key."""
    job_id = sa.select(_KEYS.c.job_id).where(_KEYS.c.dedupe_key == dedupe_key).scalar_subquery()
    return session.scalars(sa.select(ScheduledJob).where(ScheduledJob.id == job_id)).one()


def for_update(session: UnitOfWork, stmt: sa.Select) -> sa.Select:
    """`stmt` locking its rows where the database has row locks (SQLite serialises every writer)."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update()
    return stmt


def skipping_locked(session: UnitOfWork, pick: sa.Select) -> sa.Select:
    """`pick` skipping rows another transaction holds (PostgreSQL; SQLite serialises writers)."""
    if session.get_bind().dialect.name == "postgresql":
        return pick.with_for_update(skip_locked=True)
    return pick


_NO_JIT = sa.text("SET LOCAL jit = off")


def without_jit(session: UnitOfWork) -> None:
    """PostgreSQL: no JIT compilation in the rest of this transaction. A claim among millions of rows
    is planned at a cost past `jit_above_cost` (the planner cannot tell how few open rows are due),
    and compiling its expressions costs more than running it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NO_JIT)
