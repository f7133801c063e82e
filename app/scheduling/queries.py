"""The ledger's statements that depend on the database or on the unit of work they run in."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import UTCDateTime, loaded, new_row, writes
from app.scheduling.models import DEAD, DISPATCHED, DONE, OPEN, PENDING, ScheduledJob

_JOBS = ScheduledJob.__table__


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


def skipping_locked(session: Session, pick: sa.Select) -> sa.Select:
    """`pick` skipping rows another transaction holds (PostgreSQL; SQLite serialises writers)."""
    if session.get_bind().dialect.name == "postgresql":
        return pick.with_for_update(skip_locked=True)
    return pick


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
    """One ledger row (values by column) added to a batched unit, with a reserved id."""
    return writes.add(session, new_row(ScheduledJob, **values), with_id=True)


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

    PostgreSQL: `id = ANY(ARRAY(SELECT ... FROM unnest(ids) CROSS JOIN LATERAL (one row by id)))`.
    The array is computed once, each id looked up by primary key, and the UPDATE itself finds its
    rows by primary key alone, whatever the table statistics say: a plain `id IN (ids) AND status
    IN (...)` on a table not analysed since it filled was planned as a scan of every open row
    through the status indexes, and `id IN (SELECT ... FOR UPDATE)` ran the subquery once a row.
    SQLite: the ids and conditions as such (its writers are serialised: nothing to lock).
    """
    if not on_postgresql:
        return sa.and_(_JOBS.c.id.in_(sa.bindparam("job_ids", expanding=True)), *conditions(_JOBS))
    ids = sa.bindparam("job_ids", type_=postgresql.ARRAY(sa.Integer))
    wanted = sa.func.unnest(ids).table_valued("id").render_derived(name="wanted")
    held = _JOBS.alias("held")
    one = (
        sa.select(held.c.id)
        .where(held.c.id == wanted.c.id, *conditions(held))
        .with_for_update(skip_locked=skip_locked)
        .lateral("picked")
    )
    picked = sa.select(one.c.id).select_from(wanted).join(one, sa.true())
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


# --- ledger rows by the thousand (app/scheduling/batch.py) ----------------------------------------

# Column order of the arrays; status, attempts, created_at and trace_parent are the same for every row.
INSERT_FROM_ARRAYS = sa.text(
    """
    INSERT INTO scheduled_jobs (clinic_id, kind, queue, subject_type, subject_id, payload, due_at,
                                max_attempts, dedupe_key, origin, status, attempts, created_at,
                                trace_parent)
    SELECT r.clinic_id, r.kind, r.queue, r.subject_type, r.subject_id, r.payload::jsonb, r.due_at,
           r.max_attempts, r.dedupe_key, r.origin::jsonb, CAST(:status AS varchar), 0,
           CAST(:now AS timestamptz), CAST(:trace_parent AS varchar)
    FROM unnest(CAST(:clinic_id AS integer[]), CAST(:kind AS varchar[]), CAST(:queue AS varchar[]),
                CAST(:subject_type AS varchar[]), CAST(:subject_id AS integer[]),
                CAST(:payload AS text[]), CAST(:due_at AS timestamptz[]),
                CAST(:max_attempts AS integer[]), CAST(:dedupe_key AS varchar[]),
                CAST(:origin AS text[]))
         AS r(clinic_id, kind, queue, subject_type, subject_id, payload, due_at, max_attempts,
              dedupe_key, origin)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, due_at
    """
)


def inserts_from_arrays(session: Session) -> bool:
    """Whether INSERT_FROM_ARRAYS runs here (PostgreSQL's unnest)."""
    return session.get_bind().dialect.name == "postgresql"
