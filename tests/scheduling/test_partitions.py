"""The ledger at any size: each dedupe_key once across the monthly partitions (PostgreSQL) and in the
plain table (SQLite); the purge drops whole months of final rows on PostgreSQL, never one holding a
row still open, and deletes rows one by one on SQLite; the months ahead exist before rows arrive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.platform import clock
from app.platform.app_db import get_db
from app.platform.scheduling import run_job, sweeps
from app.platform.scheduling.models import ScheduledJob, ScheduledJobKey
from app.platform.scheduling.partitions import queries as partitions
from tests.ledger import schedule, schedule_many, status_counts

EFFECT = "test.effect"
# The last minute of a month and the first of the next: two partitions on PostgreSQL.
JAN_END = datetime(2026, 1, 31, 23, 59, 30, tzinfo=UTC)
FEB_START = datetime(2026, 2, 1, 0, 0, 30, tzinfo=UTC)


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def _partitioned(db) -> bool:
    return partitions.is_partitioned(db)


def _months(db) -> list[datetime]:
    with db.engine.connect() as conn:
        return partitions.attached_months(conn)


def _partition_of(db, job_id: int) -> str:
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT tableoid::regclass::text FROM scheduled_jobs WHERE id = :id"), {"id": job_id}
        ).scalar()


def _add(db, tenant, key: str, now: datetime, due_at: datetime | None = None) -> ScheduledJob:
    with db.unit_of_work() as session:
        return schedule(
            session=session, kind=EFFECT, due_at=due_at or now, dedupe_key=key, now=now, clinic_id=tenant.id
        )


def _rows(db, key: str) -> list[ScheduledJob]:
    with db.unit_of_work() as session:
        return session.scalars(sa.select(ScheduledJob).where(ScheduledJob.dedupe_key == key)).all()


def _keys(db) -> dict[str, int]:
    with db.unit_of_work() as session:
        return dict(session.execute(sa.select(ScheduledJobKey.dedupe_key, ScheduledJobKey.job_id)).all())


def test_the_same_dedupe_key_in_two_months_makes_one_row(ctx, db, tenant):
    if _partitioned(db):
        for month in (JAN_END, FEB_START):
            partitions.create_partition(db, partitions.month_of(month))
    first = _add(db, tenant, "across-months", JAN_END)
    again = _add(db, tenant, "across-months", FEB_START)  # a month later: another partition
    assert again.id == first.id
    with db.unit_of_work() as session:  # many at once, the key repeated within the call too
        created = schedule_many(
            session=session,
            now=FEB_START,
            jobs=[
                {"kind": EFFECT, "due_at": FEB_START, "dedupe_key": key, "clinic_id": tenant.id}
                for key in ("across-months", "new-in-feb", "new-in-feb")
            ],
        )
        again_many = schedule_many(  # a second write in the unit: the same keys
            session=session,
            now=FEB_START,
            jobs=[
                {"kind": EFFECT, "due_at": FEB_START, "dedupe_key": key, "clinic_id": tenant.id}
                for key in ("across-months", "new-in-feb", "bulk", "bulk")
            ],
        )
        ids = [row.id for row in again_many]
    assert [job.dedupe_key for job in created] == ["new-in-feb"] and len(ids) == 1
    assert [len(_rows(db, key)) for key in ("across-months", "new-in-feb", "bulk")] == [1, 1, 1]
    assert _keys(db) == {
        "across-months": first.id,
        "new-in-feb": created[0].id,
        "bulk": ids[0],
    }
    if _partitioned(db):
        assert _partition_of(db, first.id) == "scheduled_jobs_p2026_01"
        assert _partition_of(db, created[0].id) == "scheduled_jobs_p2026_02"


def _run(db, job: ScheduledJob, now: datetime) -> None:
    assert run_job(db=db, job_id=job.id, now=now) == "done"


def test_the_purge_drops_a_month_of_final_rows_and_keeps_a_month_with_an_open_row(ctx, db, tenant, app):
    # SQLite: one table, its final rows past the retention deleted one by one, whatever their month.
    partitioned = _partitioned(db)
    march, april = datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 4, 10, tzinfo=UTC)
    if partitioned:
        for month in (march, april):
            partitions.create_partition(db, partitions.month_of(month))
    done = [_add(db, tenant, f"march-{i}", march) for i in range(3)]
    for job in done:
        _run(db, job, march)
    dead = _add(db, tenant, "march-dead", march)
    with db.unit_of_work() as session:  # a row that gave up (an admin may still retry it)
        session.execute(
            sa.update(ScheduledJob).where(ScheduledJob.id == dead.id).values(status="dead", finished_at=march)
        )
    finished_in_april = _add(db, tenant, "april-done", april)
    _run(db, finished_in_april, april)
    still_open = _add(db, tenant, "april-open", april, due_at=april + timedelta(days=300))

    now = datetime(2026, 6, 1, tzinfo=UTC)  # both months entirely before the retention's cutoff
    # PostgreSQL: March dropped whole (its dead row moved to DEFAULT); April kept whole, open row and all.
    assert sweeps.purge_done(db=get_db(), now=now) == (3 if partitioned else 4)
    if partitioned:
        months = _months(db)
        assert partitions.month_of(march) not in months and partitions.month_of(april) in months
        with db.engine.connect() as conn:  # dropped, not left detached
            assert conn.execute(sa.text("SELECT to_regclass('scheduled_jobs_p2026_03')")).scalar() is None
        assert _partition_of(db, dead.id) == partitions.DEFAULT_PARTITION
        assert status_counts(db) == {"dead": 1, "done": 1, "pending": 1}
        assert set(_keys(db)) == {"march-dead", "april-done", "april-open"}
    else:
        assert status_counts(db) == {"dead": 1, "pending": 1}
        assert set(_keys(db)) == {"march-dead", "april-open"}
    again = _add(db, tenant, "march-0", now)  # its row purged, the key is free again (as before)
    assert again.id not in {job.id for job in done}

    _run(db, still_open, still_open.due_at)  # April's last open row done: April goes in its turn
    later = still_open.due_at + timedelta(days=app.config["SETTINGS"].purge_done_after_days + 1)
    # PostgreSQL: April's two rows; both: the March key's new row (dispatched, kept: not final).
    assert sweeps.purge_done(db=get_db(), now=later) == (2 if partitioned else 1)
    if partitioned:
        assert partitions.month_of(april) not in _months(db)
    assert status_counts(db) == {"dead": 1, "dispatched": 1}


def test_the_purge_makes_the_months_ahead_and_a_month_made_late_takes_its_rows_from_default(ctx, db, tenant):
    partitioned = _partitioned(db)
    july = datetime(2030, 7, 15, tzinfo=UTC)
    stray = _add(db, tenant, "before-its-month", july)  # no partition for July 2030 yet: DEFAULT
    if partitioned:
        assert _partition_of(db, stray.id) == partitions.DEFAULT_PARTITION
    sweeps.purge_done(db=get_db(), now=july)
    assert [job.id for job in _rows(db, "before-its-month")] == [stray.id]
    later = _add(db, tenant, "in-its-month", july + timedelta(days=40))
    assert _add(db, tenant, "before-its-month", july + timedelta(days=40)).id == stray.id
    if partitioned:
        assert {partitions.month_of(july + timedelta(days=31 * n)) for n in range(3)} <= set(_months(db))
        assert _partition_of(db, stray.id) == "scheduled_jobs_p2030_07"
        assert _partition_of(db, later.id) == "scheduled_jobs_p2030_08"


def test_the_purge_deletes_final_rows_past_the_retention_on_sqlite_or_in_default(ctx, db, tenant, app):
    keep = app.config["SETTINGS"].purge_done_after_days
    long_ago = clock.now() - timedelta(days=5 * 365)  # no partition that old: DEFAULT on PostgreSQL
    old, recent = _add(db, tenant, "old", long_ago), _add(db, tenant, "recent", long_ago)
    _run(db, old, long_ago)
    _run(db, recent, clock.now() - timedelta(days=keep - 1))  # finished within the retention: kept
    assert sweeps.purge_done(db=get_db(), now=clock.now()) == 1
    assert set(_keys(db)) == {"recent"} and status_counts(db) == {"done": 1}
