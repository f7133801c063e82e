"""The ledger's statements that depend on the database or on the unit of work they run in."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import UTCDateTime, allocate_ids, loaded, new_row
from app.scheduling.models import DEAD, DISPATCHED, DONE, OPEN, PENDING, ScheduledJob, ScheduledJobKey

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
# Rows nobody needs back as objects (scheduling.schedule_at_commit): what publishing them takes.
_PLAIN_COLUMNS = ("id", "status", "queue", "due_at", "kind", "subject_type", "subject_id")
_INSERT_PLAIN = sa.text(_insert_from_arrays(", ".join(_PLAIN_COLUMNS))).columns(
    *(_JOBS.c[name] for name in _PLAIN_COLUMNS)
)
# Ledger rows by the thousand (app/scheduling/batch.py): their ids and due times only.
_INSERT_IDS = sa.text(_insert_from_arrays("id, due_at"))


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


def _insert_elsewhere(session: Session, rows: list[dict]) -> list:
    """SQLite (its writers serialised: BEGIN IMMEDIATE, app/db/engine.py): ids for the rows, their
    keys (those already there skipped), then the rows of the keys that were new."""
    ids = allocate_ids(session, {ScheduledJob: len(rows)})[ScheduledJob]
    by_key = {row["dedupe_key"]: {**row, "id": job_id} for row, job_id in zip(rows, ids, strict=True)}
    keys = [{"dedupe_key": key, "job_id": row["id"]} for key, row in by_key.items()]
    new = session.execute(_NEW_KEYS, keys).all()
    if not new:
        return []
    return session.execute(_INSERT_WITH_IDS, [by_key[key] for key, _ in new]).all()


def insert_new(session: Session, rows: list[dict]) -> list[ScheduledJob]:
    """INSERT the rows (values by column) whose dedupe_key is new, in an ORM unit of work; returns
    the created ones as the session's objects."""
    # As if loaded (like claim() does): the session's objects, no SELECT after.
    return [loaded(session, ScheduledJob, row) for row in _insert_new(session, rows, _INSERT_ROWS)]


def insert_new_plain(session: Session, rows: list[dict]) -> list[sa.Row]:
    """`insert_new` for rows nobody needs back as objects: the created rows' (id, status, queue,
    due_at, kind, subject_type, subject_id)."""
    return _insert_new(session, rows, _INSERT_PLAIN)


def _insert_new(session: Session, rows: list[dict], statement: sa.Executable) -> list[sa.Row]:
    session.flush()  # the rows may refer to objects still pending in this session
    rows = _first_of_each_key(rows)
    if session.get_bind().dialect.name == "postgresql":
        result = session.execute(statement, _arrays(rows)).all()
    else:
        result = _insert_elsewhere(session, rows)
    return sorted(result, key=lambda row: row.id)


def insert_ids(session: Session, rows: list[dict]) -> list[sa.Row]:
    """PostgreSQL: INSERT the rows whose dedupe_key is new; their (id, due_at)."""
    session.flush()
    return session.execute(_INSERT_IDS, _arrays(_first_of_each_key(rows))).all()


def existing(session: Session, dedupe_key: str) -> ScheduledJob:
    """The row scheduled under `dedupe_key`, found through its key."""
    job_id = sa.select(_KEYS.c.job_id).where(_KEYS.c.dedupe_key == dedupe_key).scalar_subquery()
    return session.scalars(sa.select(ScheduledJob).where(ScheduledJob.id == job_id)).one()


def for_update(session: Session, stmt: sa.Select) -> sa.Select:
    """`stmt` locking its rows where the database has row locks (SQLite serialises every writer)."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update()
    return stmt


def skipping_locked(session: Session, pick: sa.Select) -> sa.Select:
    """`pick` skipping rows another transaction holds (PostgreSQL; SQLite serialises writers)."""
    if session.get_bind().dialect.name == "postgresql":
        return pick.with_for_update(skip_locked=True)
    return pick


_NO_JIT = sa.text("SET LOCAL jit = off")


def without_jit(session: Session) -> None:
    """PostgreSQL: no JIT compilation in the rest of this transaction. A claim among millions of rows
    is planned at a cost past `jit_above_cost` (the planner cannot tell how few open rows are due),
    and compiling its expressions took longer (about 120 ms) than running it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NO_JIT)


def written_with_the_unit(session) -> bool:
    """Whether the unit of work writes its rows in one statement at its end (a batched unit): a
    ledger row then goes in with them, its dedupe_key new by construction (no ON CONFLICT)."""
    return session.batched


def add_to_unit(session, values: dict) -> ScheduledJob:
    """One ledger row (values by column) added to a batched unit, with a reserved id, and its key."""
    job = session.add(new_row(ScheduledJob, **values), with_id=True)
    session.add(new_row(ScheduledJobKey, dedupe_key=job.dedupe_key, job_id=job.id))
    return job


# --- counting an attempt: one statement, committed on its own ---------------------------------


def _open(table) -> sa.ColumnElement:
    return sa.or_(table.c.status == PENDING, table.c.status == DISPATCHED)


IS_OPEN = _open(_JOBS)
WORKER_LOST = (
    "its attempts ran out and the last one never finished: the worker running it was lost "
    "(killed, out of memory, past its time limit)"
)


# No attempt in flight: none counted, or the one counted is older than the redispatch grace on a row
# still open. Its delivery had that long to claim the row, and a handler still running holds the row
# (PostgreSQL's row lock, skipped; SQLite's write lock, waited for), so the worker that counted it is
# gone. A row with an attempt in flight is not counted again: a duplicate delivery leaves it, a
# drainer goes on to the next row.
def _not_in_flight(table) -> sa.ColumnElement:
    cutoff = sa.bindparam("b_lease_cutoff", type_=UTCDateTime())
    return sa.or_(table.c.started_at.is_(None), table.c.started_at <= cutoff)


_NOT_IN_FLIGHT = _not_in_flight(_JOBS)


def _pick_by_id() -> sa.Select:
    # OR, not IN: an IN list is an "expanding" parameter, re-rendered on every execution.
    return sa.select(_JOBS.c.id).where(
        _JOBS.c.id == sa.bindparam("job_id"),
        IS_OPEN,
        _JOBS.c.due_at <= sa.bindparam("until", type_=UTCDateTime()),
        _NOT_IN_FLIGHT,
    )


def _pick_next_of_kind() -> sa.Select:
    # A drainer's next row: the oldest due row of a kind. The statuses are literals, as in the
    # predicate of ix_scheduled_jobs_open_kind_due, so that even a generic plan can use that index.
    open_literally = _JOBS.c.status.in_([sa.literal_column(f"'{status}'") for status in OPEN])
    return (
        sa.select(_JOBS.c.id)
        .where(
            _JOBS.c.kind == sa.bindparam("of_kind"),
            open_literally,
            _JOBS.c.due_at <= sa.bindparam("until", type_=UTCDateTime()),
            _NOT_IN_FLIGHT,
        )
        .order_by(_JOBS.c.due_at)
        .limit(1)
    )


def _next_later_of_kind() -> sa.Select:
    # A draining kind's next open row not due yet (after `until`, up to `b_horizon_end`): what a
    # drainer that found nothing due wakes a worker for. The same index as the drainer's next row.
    open_literally = _JOBS.c.status.in_([sa.literal_column(f"'{status}'") for status in OPEN])
    columns = (
        _JOBS.c.id,
        _JOBS.c.queue,
        _JOBS.c.due_at,
        _JOBS.c.kind,
        _JOBS.c.subject_type,
        _JOBS.c.subject_id,
    )
    return (
        sa.select(*columns)
        .where(
            _JOBS.c.kind == sa.bindparam("of_kind"),
            open_literally,
            _JOBS.c.due_at > sa.bindparam("until", type_=UTCDateTime()),
            _JOBS.c.due_at <= sa.bindparam("b_horizon_end", type_=UTCDateTime()),
        )
        .order_by(_JOBS.c.due_at)
        .limit(1)
    )


NEXT_LATER_OF_KIND = _next_later_of_kind()


def _realtime_waiting_since() -> sa.Select:
    # Since when the realtime queue's drained kinds have had a due row waiting: the oldest due open
    # row of those kinds (few, soon done), NULL if none waits.
    open_literally = [sa.literal_column(f"'{status}'") for status in OPEN]
    waiting = sa.alias(_JOBS, "waiting")
    return sa.select(sa.func.min(waiting.c.due_at).label("realtime_waiting_since")).where(
        waiting.c.kind.in_(sa.bindparam("realtime_kinds", expanding=True)),
        waiting.c.status.in_(open_literally),
        waiting.c.due_at <= sa.bindparam("now", type_=UTCDateTime()),
    )


REALTIME_WAITING_SINCE = _realtime_waiting_since()


def _row_and_realtime_lag() -> sa.Select:
    # A background delivery's row (if still open) and since when a new lead's processing has waited.
    open_literally = [sa.literal_column(f"'{status}'") for status in OPEN]
    oldest = REALTIME_WAITING_SINCE.scalar_subquery()
    columns = [_JOBS.c[name] for name in ("id", "queue", "due_at", "kind", "subject_type", "subject_id")]
    return sa.select(*columns, oldest.label("realtime_waiting_since")).where(
        _JOBS.c.id == sa.bindparam("job_id"), _JOBS.c.status.in_(open_literally)
    )


ROW_AND_REALTIME_LAG = _row_and_realtime_lag()


def _next_batch_of_kind(*, on_postgresql: bool) -> sa.ColumnElement:
    """A draining kind's next batch (`of_kind`, at most `b_limit` rows): its oldest due rows still
    at their first attempt (as a message's batch: a row that spent one runs alone), as a WHERE on the
    table. PostgreSQL: the ids locked (SKIP LOCKED: another drainer takes the next ones) and
    gathered in one array first, then updated by primary key, whatever the statistics say."""
    open_literally = _JOBS.c.status.in_([sa.literal_column(f"'{status}'") for status in OPEN])
    pick = (
        sa.select(_JOBS.c.id)
        .where(
            _JOBS.c.kind == sa.bindparam("of_kind"),
            open_literally,
            _JOBS.c.attempts == 0,
            _JOBS.c.due_at <= sa.bindparam("until", type_=UTCDateTime()),
            _not_in_flight(_JOBS),
        )
        .order_by(_JOBS.c.due_at)
        .limit(sa.bindparam("b_limit"))
    )
    if not on_postgresql:
        return sa.and_(_JOBS.c.id.in_(pick), IS_OPEN)
    pick = pick.with_for_update(skip_locked=True)
    return sa.and_(_JOBS.c.id == sa.any_(sa.func.array(pick.scalar_subquery())), IS_OPEN)


def _first_attempts_due(table) -> list[sa.ColumnElement]:
    # A batch's rows still at their first attempt. A row that already spent one (its handler failed,
    # or its worker died, maybe running this very batch) runs alone: a row that kills its worker
    # takes no other row's attempts with it a second time.
    return [
        _open(table),
        table.c.attempts == 0,
        table.c.due_at <= sa.bindparam("until", type_=UTCDateTime()),
        _not_in_flight(table),
    ]


def _rows_named(conditions, *, on_postgresql: bool, skip_locked: bool = False) -> sa.ColumnElement:
    """The rows of `job_ids` (a batch's message) that meet `conditions(table)`, as a WHERE on the
    table; on PostgreSQL each locked (FOR UPDATE, or skipped if SKIP LOCKED) before it is updated.

    PostgreSQL: `id = ANY(ARRAY(SELECT ... FROM unnest(ids) JOIN LATERAL (the row of each id, locked,
    LIMIT 1) WHERE <conditions>))`: each id's row found by primary key alone and locked, the
    conditions checked on the row as locked, the array computed once, and the UPDATE's rows found by
    it, whatever the table statistics say. On a table not analysed since it filled, `id IN (ids) AND
    status IN (...)` was planned as a scan of every open row through the status indexes, `id IN
    (SELECT ... FOR UPDATE)` ran the subquery once a row, and the conditions beside `id = ...` in the
    LATERAL ANDed the primary key with the partial index's every open row, once an id (LIMIT 1 keeps
    them above it). SQLite: the ids and conditions as such (its writers are serialised).
    """
    if not on_postgresql:
        return sa.and_(_JOBS.c.id.in_(sa.bindparam("job_ids", expanding=True)), *conditions(_JOBS))
    ids = sa.bindparam("job_ids", type_=postgresql.ARRAY(sa.Integer))
    wanted = sa.func.unnest(ids).table_valued("id").render_derived(name="wanted")
    held = _JOBS.alias("held")
    row = sa.select(held).where(held.c.id == wanted.c.id).limit(1)
    row = row.with_for_update(skip_locked=skip_locked).lateral("row")
    picked = sa.select(row.c.id).select_from(wanted).join(row, sa.true()).where(*conditions(row))
    return _JOBS.c.id == sa.any_(sa.func.array(picked.scalar_subquery()))


def _count_statement(picked: sa.ColumnElement) -> sa.Update:
    """The attempt's compare-and-set: the open rows `picked` selects get attempts+1, or, their
    attempts already spent (each started and none finished: its worker died), become dead.

    Built once per dialect and pick, on the Table with bound parameters (it runs for every job).
    `id = (pick)`, not `id IN (pick)`: a scalar subquery is run once and its id looked up by primary
    key whatever the table statistics say (an IN once joined a scan of every open row to the pick,
    with a plan made while the table was nearly empty). SKIP LOCKED (PostgreSQL): a row a concurrent
    delivery is running is not counted again, and a drainer goes on to the next row.
    """
    spent = _JOBS.c.attempts >= sa.func.coalesce(_JOBS.c.max_attempts, sa.bindparam("b_max_attempts"))
    now = sa.bindparam("now", type_=UTCDateTime())
    return (
        sa.update(_JOBS)
        .where(picked)
        .values(
            attempts=sa.case((spent, _JOBS.c.attempts), else_=_JOBS.c.attempts + 1),
            status=sa.case((spent, sa.literal(DEAD)), else_=_JOBS.c.status),
            finished_at=sa.case((spent, now), else_=_JOBS.c.finished_at),
            last_error=sa.case((spent, sa.literal(WORKER_LOST)), else_=_JOBS.c.last_error),
            started_at=sa.case((spent, _JOBS.c.started_at), else_=now),
        )
        .returning(_JOBS.c.id, _JOBS.c.kind, _JOBS.c.attempts, _JOBS.c.status)
    )


def _one_row(pick: sa.Select, *, skip_locked: bool) -> sa.ColumnElement:
    if skip_locked:
        pick = pick.with_for_update(skip_locked=True)
    return sa.and_(_JOBS.c.id == pick.scalar_subquery(), IS_OPEN)


_COUNT = {
    (dialect, by_id): _count_statement(
        _one_row(_pick_by_id() if by_id else _pick_next_of_kind(), skip_locked=dialect == "postgresql")
    )
    for dialect in ("postgresql", "other")
    for by_id in (True, False)
}
_COUNT_BATCH = {
    dialect: _count_statement(
        _rows_named(_first_attempts_due, on_postgresql=dialect == "postgresql", skip_locked=True)
    )
    for dialect in ("postgresql", "other")
}


_COUNT_KIND_BATCH = {
    dialect: _count_statement(_next_batch_of_kind(on_postgresql=dialect == "postgresql"))
    for dialect in ("postgresql", "other")
}


def _at_counted_attempt(table) -> list[sa.ColumnElement]:
    return [_open(table), table.c.attempts == sa.bindparam("b_attempts")]


# A batch's claim: runner._CLAIM for rows counted at the same attempt. It waits for a row's lock,
# as that claim does (see there why).
_CLAIM_MANY = {
    dialect: sa.update(_JOBS)
    .where(_rows_named(_at_counted_attempt, on_postgresql=dialect == "postgresql"))
    .values(status=DONE, finished_at=sa.bindparam("now", type_=UTCDateTime()))
    .returning(*_JOBS.c)
    for dialect in ("postgresql", "other")
}


def count_statement(db, *, by_id: bool) -> sa.Update:
    """The attempt's compare-and-set for `db`'s database: of a row by id, or a drainer's next."""
    return _COUNT["postgresql" if db.dialect == "postgresql" else "other", by_id]


def count_batch_statement(db) -> sa.Update:
    """The attempts' compare-and-set of a batch's rows (`job_ids`) still at their first attempt."""
    return _COUNT_BATCH["postgresql" if db.dialect == "postgresql" else "other"]


def count_kind_batch_statement(db) -> sa.Update:
    """The attempts' compare-and-set of a draining kind's next batch (`of_kind`, `b_limit`)."""
    return _COUNT_KIND_BATCH["postgresql" if db.dialect == "postgresql" else "other"]


def claim_many_statement(session: Session) -> sa.Update:
    """The claim of a batch's rows (`job_ids`) counted at attempt `b_attempts`, marked done at `now`."""
    return _CLAIM_MANY["postgresql" if session.get_bind().dialect.name == "postgresql" else "other"]


def run_alone(db, statement: sa.Executable, params: dict) -> list[sa.Row]:
    """Run one statement committed on its own, its rows: in autocommit on PostgreSQL (no BEGIN
    and COMMIT round trips, no ORM session); on SQLite in the BEGIN IMMEDIATE transaction of
    app/db/engine.py, which serialises it with every other writer."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        rows = conn.execute(statement, params).all()
        conn.commit()
    return rows


def inserts_from_arrays(session: Session) -> bool:
    """Whether `insert_ids` runs here (PostgreSQL's unnest)."""
    return session.get_bind().dialect.name == "postgresql"
