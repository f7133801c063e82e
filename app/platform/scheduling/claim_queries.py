"""The ledger's picks and claims: which rows are open, due and not in flight, and the one statement
that counts an attempt (committed on its own), built once per dialect."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.platform.db import UnitOfWork, UTCDateTime
from app.platform.scheduling.models import DEAD, DISPATCHED, DONE, OPEN, PENDING, LedgerTurn, ScheduledJob

_JOBS = ScheduledJob.__table__


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


def _pick_turn(
    queue: str, lanes: dict[str, list[str]], *, bulk_first: bool, skip_locked: bool, passing_over: bool
) -> sa.Select:
    # The next row of a queue's laned kinds (registry's `lane`): its lane first (transactional, or
    # bulk on a bulk turn), then the clinic that has waited longest since its last turn (never: first),
    # then the oldest due row. Only the rows due, open and not in flight are sorted: the backlog's
    # due rows, through ix_scheduled_jobs_open_kind_due. `passing_over`: not the rows of the clinics
    # in `b_passed_over` (turns.py: those holding their share of this process' threads).
    open_literally = _JOBS.c.status.in_([sa.literal_column(f"'{status}'") for status in OPEN])
    turns = LedgerTurn.__table__
    bulk = _JOBS.c.kind.in_(lanes.get("bulk", []))
    lane = sa.case((bulk, 0 if bulk_first else 1), else_=1 if bulk_first else 0)
    clinic_key = sa.func.coalesce(_JOBS.c.clinic_id, 0)
    pick = (
        sa.select(_JOBS.c.id)
        .select_from(
            _JOBS.outerjoin(turns, sa.and_(turns.c.queue == queue, turns.c.clinic_key == clinic_key))
        )
        .where(
            _JOBS.c.kind.in_([kind for kinds in lanes.values() for kind in kinds]),
            open_literally,
            _JOBS.c.due_at <= sa.bindparam("until", type_=UTCDateTime()),
            _NOT_IN_FLIGHT,
        )
        .order_by(lane, turns.c.served_at.asc().nulls_first(), _JOBS.c.due_at, _JOBS.c.id)
        .limit(1)
    )
    if passing_over:  # an IN list is re-rendered each time: only while some clinic has its share
        pick = pick.where(clinic_key.not_in(sa.bindparam("b_passed_over", expanding=True)))
    if skip_locked:  # the ledger's row only: the clinic's turn row is read, not locked
        pick = pick.with_for_update(skip_locked=True, of=_JOBS)
    return pick


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
    status IN (...)` is planned as a scan of every open row through the status indexes, `id IN
    (SELECT ... FOR UPDATE)` runs the subquery once a row, and the conditions beside `id = ...` in
    the LATERAL AND the primary key with the partial index's every open row, once an id (LIMIT 1
    keeps them above it). SQLite: the ids and conditions as such (its writers are serialised).
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
        .returning(_JOBS.c.id, _JOBS.c.kind, _JOBS.c.attempts, _JOBS.c.status, _JOBS.c.clinic_id)
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


# A memo of compiled SQL, a pure function of the code and the schema: no engine's state (app/bootstrap.py).
_COUNT_TURN: dict[tuple, sa.Update] = {}


def count_turn_statement(
    db, *, queue: str, lanes: dict[str, list[str]], bulk_first: bool, passing_over: bool
) -> sa.Update:
    """The attempt's compare-and-set of the next row in turn on `queue` (`_pick_turn`), built once
    per database kind, queue, lane order and whether some clinics are passed over."""
    postgres = db.dialect == "postgresql"
    lanes_key = tuple((lane, tuple(kinds)) for lane, kinds in sorted(lanes.items()))
    key = (postgres, queue, bulk_first, passing_over, lanes_key)
    statement = _COUNT_TURN.get(key)
    if statement is None:
        pick = _pick_turn(
            queue, lanes, bulk_first=bulk_first, skip_locked=postgres, passing_over=passing_over
        )
        statement = _COUNT_TURN[key] = _count_statement(
            sa.and_(_JOBS.c.id == pick.scalar_subquery(), IS_OPEN)
        )
    return statement


def count_batch_statement(db) -> sa.Update:
    """The attempts' compare-and-set of a batch's rows (`job_ids`) still at their first attempt."""
    return _COUNT_BATCH["postgresql" if db.dialect == "postgresql" else "other"]


def count_kind_batch_statement(db) -> sa.Update:
    """The attempts' compare-and-set of a draining kind's next batch (`of_kind`, `b_limit`)."""
    return _COUNT_KIND_BATCH["postgresql" if db.dialect == "postgresql" else "other"]


def claim_many_statement(session: UnitOfWork) -> sa.Update:
    """The claim of a batch's rows (`job_ids`) counted at attempt `b_attempts`, marked done at `now`."""
    return _CLAIM_MANY["postgresql" if session.get_bind().dialect.name == "postgresql" else "other"]


def run_alone(db, statement: sa.Executable, params: dict) -> list[sa.Row]:
    """Run one statement committed on its own, its rows: in autocommit on PostgreSQL (no BEGIN
    and COMMIT round trips, no ORM session); on SQLite in the BEGIN IMMEDIATE transaction of
    app/platform/db/engine.py, which serialises it with every other writer."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        rows = conn.execute(statement, params).all()
        conn.commit()
    return rows
