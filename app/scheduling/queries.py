"""The ledger's statements that depend on the database or on the unit of work they run in."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from app.db import UTCDateTime, allocate_ids, loaded, new_row, rows_by_ids, writes
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
    session.flush()  # the rows may refer to objects still pending in this session
    rows = _first_of_each_key(rows)
    if session.get_bind().dialect.name == "postgresql":
        result = session.execute(_INSERT_ROWS, _arrays(rows)).all()
    else:
        result = _insert_elsewhere(session, rows)
    # As if loaded (like claim() does): the session's objects, no SELECT after.
    return [loaded(session, ScheduledJob, row) for row in sorted(result, key=lambda r: r.id)]


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
    return writes.is_batched(session)


def stores_dispatched(session) -> bool:
    """Whether rows due soon are stored as dispatched and published after the commit (a capture
    unit of work: no UPDATE after its commit; a draining kind wakes a worker once), rather than
    marked dispatched after the commit (`mark_and_publish`)."""
    return writes.is_capture(session)


def add_to_unit(session, values: dict) -> ScheduledJob:
    """One ledger row (values by column) added to a batched unit, with a reserved id, and its key."""
    job = writes.add(session, new_row(ScheduledJob, **values), with_id=True)
    writes.add(session, new_row(ScheduledJobKey, dedupe_key=job.dedupe_key, job_id=job.id))
    return job


# --- counting an attempt: one statement, committed on its own ---------------------------------

IS_OPEN = sa.or_(_JOBS.c.status == PENDING, _JOBS.c.status == DISPATCHED)
WORKER_LOST = (
    "its attempts ran out and the last one never finished: the worker running it was lost "
    "(killed, out of memory, past its time limit)"
)


# No attempt in flight: none counted, or the one counted is older than the redispatch grace on a row
# still open. Its delivery had that long to claim the row, and a handler still running holds the row
# (PostgreSQL's row lock, skipped; SQLite's write lock, waited for), so the worker that counted it is
# gone. A row with an attempt in flight is not counted again: a duplicate delivery leaves it, a
# drainer goes on to the next row.
_NOT_IN_FLIGHT = sa.or_(
    _JOBS.c.started_at.is_(None), _JOBS.c.started_at <= sa.bindparam("b_lease_cutoff", type_=UTCDateTime())
)


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


def _count_statement(pick: sa.Select | None, *, skip_locked: bool, picked=None) -> sa.Update:
    """The attempt's compare-and-set: the open row `pick` selects (or the rows `picked` names: a
    batch's) gets attempts+1, or, its attempts already spent (each started and none finished: its
    worker died), becomes dead.

    Built once per dialect and pick, on the Table with bound parameters (it runs for every job).
    `id = (pick)`, not `id IN (pick)`: a scalar subquery is run once and its id looked up by primary
    key whatever the table statistics say (an IN once joined a scan of every open row to the pick,
    with a plan made while the table was nearly empty). SKIP LOCKED (PostgreSQL): a row a concurrent
    delivery is running is not counted again, and a drainer goes on to the next row.
    """
    if picked is None:
        pick = pick.with_for_update(skip_locked=True) if skip_locked else pick
        picked = sa.and_(_JOBS.c.id == pick.scalar_subquery(), IS_OPEN)
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


_COUNT = {
    (dialect, by_id): _count_statement(
        _pick_by_id() if by_id else _pick_next_of_kind(), skip_locked=dialect == "postgresql"
    )
    for dialect in ("postgresql", "other")
    for by_id in (True, False)
}


def count_statement(db, *, by_id: bool) -> sa.Update:
    """The attempt's compare-and-set for `db`'s database: of a row by id, or a drainer's next."""
    return _COUNT["postgresql" if db.dialect == "postgresql" else "other", by_id]


# A batch's rows (`job_ids`, runner.run_batch). Counted: due, open, unheld and at their first attempt
# (a row that spent one, by a failure or a lost worker, perhaps in this very batch, runs alone: one
# that kills its worker takes no other's attempts with it twice). Claimed: open and at the attempt
# counted for them, waiting for a row's lock as runner._CLAIM does. By primary key (rows_by_ids).
_UNTIL = sa.bindparam("until", type_=UTCDateTime())
_FIRST_ATTEMPT = [IS_OPEN, _JOBS.c.attempts == 0, _JOBS.c.due_at <= _UNTIL, _NOT_IN_FLIGHT]
_COUNTED = [IS_OPEN, _JOBS.c.attempts == sa.bindparam("b_attempts")]
_BATCH = {
    dialect: (
        _count_statement(
            None, skip_locked=True, picked=rows_by_ids(_JOBS, _FIRST_ATTEMPT, "job_ids", dialect, True)
        ),
        sa.update(_JOBS)
        .where(rows_by_ids(_JOBS, _COUNTED, "job_ids", dialect))
        .values(status=DONE, finished_at=sa.bindparam("now", type_=UTCDateTime()))
        .returning(*_JOBS.c),
    )
    for dialect in ("postgresql", "sqlite")
}


def batch_statements(db) -> tuple[sa.Update, sa.Update]:
    """A batch's count (of the rows `job_ids` still at their first attempt) and claim (of those
    counted at attempt `b_attempts`, marked done at `now`)."""
    return _BATCH["postgresql" if db.dialect == "postgresql" else "sqlite"]


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


# --- the ledger's monthly partitions (PostgreSQL; migration 0031) ---------------------------------
# scheduled_jobs is partitioned by month of created_at (never changed after the insert: a row never
# moves between partitions, and its live rows stay in the last month or two), one partition per UTC
# month named scheduled_jobs_pYYYY_MM, and a DEFAULT partition so that an insert never fails for want
# of its month. The purge creates the months ahead and drops old months whose rows are all final.

DEFAULT_PARTITION = "scheduled_jobs_default"
_PARTITION_PREFIX = "scheduled_jobs_p"
_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '2s'"  # a DDL waiting for a lock queues every ledger query
# NULL-safe: a row without a finished_at is not final-and-old.
_FINAL_AND_OLD = (
    "coalesce(status IN ('done', 'cancelled', 'failed', 'dead') AND due_at < :cutoff "
    "AND finished_at < :cutoff, false)"
)


def is_partitioned(db) -> bool:
    """Whether the ledger is partitioned by month (PostgreSQL) rather than a plain table (SQLite)."""
    return db.dialect == "postgresql"


def month_of(at: datetime) -> datetime:
    """The first instant of `at`'s UTC month."""
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(month: datetime) -> datetime:
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{_PARTITION_PREFIX}{month:%Y_%m}"


def _month_of_partition(name: str) -> datetime:
    year, month = name.removeprefix(_PARTITION_PREFIX).split("_")
    return datetime(int(year), int(month), 1, tzinfo=UTC)


def attached_months(conn: sa.Connection) -> list[datetime]:
    """The months that have a partition, oldest first."""
    names = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'scheduled_jobs'::regclass AND c.relname LIKE 'scheduled\\_jobs\\_p%'"
        )
    ).scalars()
    return sorted(_month_of_partition(name) for name in names)


def create_partition(db, month: datetime) -> bool:
    """The partition of `month` unless it exists; returns whether it made one. Rows of that month
    already in the DEFAULT partition (written while it was missing) move into it."""
    name, upper = partition_name(month), next_month(month)
    bounds = {"lower": month, "upper": upper}
    with db.engine.begin() as conn:
        if month in attached_months(conn):
            return False
        conn.execute(sa.text(_LOCK_TIMEOUT))
        strays = conn.execute(
            sa.text(
                f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} "
                "WHERE created_at >= :lower AND created_at < :upper)"
            ),
            bounds,
        ).scalar()
        if strays:  # the DEFAULT partition may not hold rows of a partition's range: take it out
            conn.exec_driver_sql(f"ALTER TABLE scheduled_jobs DETACH PARTITION {DEFAULT_PARTITION}")
        conn.exec_driver_sql(
            f"CREATE TABLE {name} PARTITION OF scheduled_jobs "
            f"FOR VALUES FROM ('{month.isoformat()}') TO ('{upper.isoformat()}')"
        )
        if strays:
            conn.execute(
                sa.text(
                    f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
                    "WHERE created_at >= :lower AND created_at < :upper RETURNING *) "
                    "INSERT INTO scheduled_jobs SELECT * FROM moved"
                ),
                bounds,
            )
            conn.exec_driver_sql(f"ALTER TABLE scheduled_jobs ATTACH PARTITION {DEFAULT_PARTITION} DEFAULT")
    return True


def holds_rows_to_keep(db, month: datetime, cutoff: datetime) -> bool:
    """Whether the partition of `month` holds a row the purge must keep where it is: open, or final
    for less than the retention (a scan of the partition, without a lock)."""
    sql = f"SELECT EXISTS (SELECT 1 FROM {partition_name(month)} WHERE NOT ({_FINAL_AND_OLD}))"
    with db.engine.connect() as conn:
        return conn.execute(sa.text(sql), {"cutoff": cutoff}).scalar()


def gave_up_ids(conn: sa.Connection, name: str) -> set[int]:
    """A partition's failed and dead rows (ix_scheduled_jobs_gave_up): kept, moved to DEFAULT."""
    return set(conn.execute(sa.text(f"SELECT id FROM {name} WHERE status IN ('failed', 'dead')")).scalars())


def delete_finished_keys(db, month: datetime, batch: int) -> None:
    """Delete the keys of the done and cancelled rows of the partition of `month` (in batches, each
    committed), while it is still attached: from then on a key of a purged row is free again, as it
    was when the purge deleted rows, and no key ever names a row that is gone."""
    name, after = partition_name(month), 0
    while True:
        with db.engine.begin() as conn:
            last, count = conn.execute(
                sa.text(
                    f"WITH j AS (SELECT id, dedupe_key FROM {name} WHERE id > :after "
                    "AND status IN ('done', 'cancelled') ORDER BY id LIMIT :n), "
                    "gone AS (DELETE FROM scheduled_job_keys k USING j "
                    "WHERE k.dedupe_key = j.dedupe_key AND k.job_id = j.id) "
                    "SELECT max(id), count(*) FROM j"
                ),
                {"after": after, "n": batch},
            ).one()
        if count < batch:
            return
        after = last


def detach_final_partition(db, month: datetime, gave_up: set[int]) -> bool:
    """Detach the partition of `month`, checked by `holds_rows_to_keep` (its keys deleted since),
    and move its failed and dead rows (`gave_up` then) to DEFAULT; returns whether it was detached
    (then `drop_detached` drops it).

    Under the detach's lock (ACCESS EXCLUSIVE on the ledger, waited for at most 2 s) only what could
    have changed since the scan is checked, through the partial indexes: no open row, and the same
    failed and dead rows (one retried since would be open or done again). Final rows never change.
    """
    name = partition_name(month)
    try:
        with db.engine.begin() as conn:
            conn.execute(sa.text(_LOCK_TIMEOUT))
            conn.exec_driver_sql(f"ALTER TABLE scheduled_jobs DETACH PARTITION {name}")
            _move_gave_up_rows(conn, name, gave_up)
    except _RowsChanged:
        return False  # a row was retried meanwhile: the partition stays; the next purge looks again
    return True


class _RowsChanged(Exception):
    """A row of a partition being detached changed since it was checked: the detach rolls back."""


def _move_gave_up_rows(conn: sa.Connection, name: str, gave_up: set[int]) -> None:
    """Under the detach's lock: check no row opened since the scan, then move the failed and dead
    rows into DEFAULT (their month is no longer attached)."""
    opened = conn.execute(
        sa.text(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE status IN ('pending', 'dispatched'))")
    ).scalar()
    if opened or gave_up_ids(conn, name) != gave_up:
        raise _RowsChanged(name)
    if gave_up:  # their month is no longer attached: they land in DEFAULT
        conn.execute(
            sa.text(
                f"WITH moved AS (DELETE FROM {name} WHERE status IN ('failed', 'dead') RETURNING *) "
                "INSERT INTO scheduled_jobs SELECT * FROM moved"
            )
        )


def detached_partitions(conn: sa.Connection) -> list[str]:
    """Partitions detached by the purge (this run's, and any a run that died left behind)."""
    return list(
        conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' "
                "AND c.relname LIKE 'scheduled\\_jobs\\_p%' AND NOT c.relispartition"
            )
        ).scalars()
    )


def drop_detached(db, name: str) -> int:
    """Drop a detached partition (its keys deleted before it was detached); how many rows it held."""
    with db.engine.begin() as conn:
        count = conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar()
        conn.exec_driver_sql(f"DROP TABLE {name}")
    return count


def finished_rows_table(db) -> sa.Table:
    """Where the purge deletes rows one by one: the whole ledger (SQLite), or only its DEFAULT
    partition (PostgreSQL: the monthly ones are dropped whole)."""
    if not is_partitioned(db):
        return _JOBS
    return _DEFAULT_TABLE


_DEFAULT_TABLE = sa.Table(
    DEFAULT_PARTITION, sa.MetaData(), *(sa.Column(c.name, c.type, primary_key=c.primary_key) for c in _JOBS.c)
)
