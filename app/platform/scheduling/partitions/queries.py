"""The ledger's monthly partitions on PostgreSQL (migration 0031): the SQL that makes, checks,
detaches and drops them.

scheduled_jobs is partitioned by month of created_at (never changed after the insert: a row never
moves between partitions, and its live rows stay in the last month or two), one partition per UTC
month named scheduled_jobs_pYYYY_MM, and a DEFAULT partition so that an insert never fails for want
of its month. The purge (app/platform/scheduling/sweeps.py) creates the months ahead and drops old months
whose rows are all final.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from app.platform.scheduling.models import ScheduledJob

_JOBS = ScheduledJob.__table__

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
    committed), while it is still attached: from then on a key of a purged row is free again, as
    on SQLite where the purge deletes rows, and no key ever names a row that is gone."""
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
