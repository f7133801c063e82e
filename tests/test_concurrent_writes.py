"""Web, worker and beat write at once: on SQLite, WAL + busy timeout + BEGIN IMMEDIATE mean no 'locked'."""

import threading

import sqlalchemy as sa

from app.domains.ops.models import Heartbeat
from app.domains.ops.service import record_heartbeat
from app.platform import clock
from app.platform.db import Database


def test_three_writers_at_once_lose_nothing(app, migrated_database):
    errors: list[Exception] = []
    writes_per_writer = 150

    def writer(name: str) -> None:
        database = Database(migrated_database)  # its own engine and connections, like a separate process
        try:
            for i in range(writes_per_writer):
                with database.unit_of_work() as session:
                    # read-then-write: the pattern that fails fast with SQLITE_BUSY without BEGIN IMMEDIATE
                    current = session.get(Heartbeat, f"{name}-counter")
                    count = int(current.detail) if current else 0
                    record_heartbeat(
                        session=session, name=f"{name}-counter", now=clock.now(), detail=str(count + 1)
                    )
                    record_heartbeat(session=session, name=f"{name}-{i}", now=clock.now())
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            database.engine.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("web", "worker", "beat")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.extensions["followup.db"].unit_of_work() as session:
        counters = {
            b.name: b.detail
            for b in session.scalars(sa.select(Heartbeat).where(Heartbeat.name.like("%-counter")))
        }
        total = session.scalar(sa.select(sa.func.count()).select_from(Heartbeat))
    assert counters == {f"{n}-counter": str(writes_per_writer) for n in ("web", "worker", "beat")}
    assert total == 3 * (writes_per_writer + 1)
