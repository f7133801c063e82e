"""A lead import of 1,000 rows survives a worker killed with SIGKILL mid-way: it resumes where it
stopped and ends with exactly 1,000 leads, one per external_id, and one report row per input row."""

import os
import signal

import pytest
import sqlalchemy as sa

from app.domains.bulk.models import BulkJobRow
from app.domains.leads.models import Lead
from tests.reliability.conftest import FAST, sweeping
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

pytestmark = pytest.mark.reliability

ROWS = 1000
CHUNK = 50
WORKER_ENV = {f"FOLLOWUP_{name.upper()}": str(value) for name, value in FAST.items()} | {
    "FOLLOWUP_IMPORT_CHUNK_SIZE": str(CHUNK),
    "FOLLOWUP_PLUGINS": "tests.reliability.slow_import",
    # No realtime worker runs here, so the import's own events would look like new leads waiting
    # and its chunks would step aside for 30 s (bulk work yielding): what is tested is the kill.
    "FOLLOWUP_YIELD_AT_MOST_SECONDS": "0",
}


def progress(db, bulk_id: int):
    """(leads imported, the bulk job's done count, its status), on a plain driver connection
    (not a unit of work: on SQLite that would wait behind the worker's chunk transactions)."""
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"SELECT count(*) FROM {Lead.__table__.name} WHERE external_id LIKE 'ev-%'")
        [leads] = cursor.fetchone()
        cursor.execute(f"SELECT done, status FROM bulk_jobs WHERE id = {int(bulk_id)}")
        done, status = cursor.fetchone()
        connection.rollback()  # PostgreSQL: end the read's transaction
        return leads, done, status
    finally:
        connection.close()


def test_an_import_of_1000_rows_with_a_worker_killed_mid_way(app, db, client, tenant, monkeypatch, fast):
    monkeypatch.setattr(app.config["SETTINGS"], "import_chunk_size", CHUNK)
    settings = app.config["SETTINGS"]
    rows = [
        {"external_id": f"ev-{i}", "first_name": f"F{i}", "last_name": "Expo", "phone": f"+1415555{i:04d}"}
        for i in range(ROWS)
    ]
    with subprocess_worker(
        settings, name="importdoomed", queues="bulk", FOLLOWUP_TEST_ROW_SLEEP="0.02", **WORKER_ENV
    ) as doomed:
        wait_until_consuming(app, "importdoomed")
        resp = client.post(
            "/api/leads/import?automation=false", json=rows, headers=tenant.headers("treatment_coordinator")
        )
        assert resp.status_code == 202, resp.get_json()
        bulk_id = resp.get_json()["id"]
        wait_for(lambda: progress(db, bulk_id)[0] >= 4 * CHUNK, timeout=60, interval=0.02)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    leads_at_kill = progress(db, bulk_id)[0]
    assert leads_at_kill < ROWS, "the kill came too late to test anything"

    with subprocess_worker(settings, name="importrescuer", queues="bulk", **WORKER_ENV), sweeping(app):
        wait_for(lambda: progress(db, bulk_id)[2] == "done", timeout=120, interval=0.2)
    assert progress(db, bulk_id) == (ROWS, ROWS, "done")
    with db.unit_of_work() as session:
        doubled = session.execute(
            sa.select(Lead.external_id).group_by(Lead.external_id).having(sa.func.count() > 1)
        ).all()
        outcomes = session.execute(
            sa.select(
                BulkJobRow.outcome, sa.func.count(), sa.func.min(BulkJobRow.row), sa.func.max(BulkJobRow.row)
            )
            .where(BulkJobRow.bulk_job_id == bulk_id)
            .group_by(BulkJobRow.outcome)
        ).all()
    assert doubled == []
    assert [tuple(o) for o in outcomes] == [("created", ROWS, 1, ROWS)]
