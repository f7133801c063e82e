"""A bulk follow-up over 1,000 leads survives a worker killed with SIGKILL mid-way: exactly 1,000 tasks."""

import os
import signal

import sqlalchemy as sa

from app.domains.bulk.models import BulkJob
from app.domains.leads.models import Lead
from app.domains.tasks.models import LeadTask
from app.platform import clock
from tests.reliability.conftest import FAST, sweeping
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

LEADS = 1000
CHUNK = 50
WORKER_ENV = {f"FOLLOWUP_{name.upper()}": str(value) for name, value in FAST.items()} | {
    "FOLLOWUP_BULK_CHUNK_SIZE": str(CHUNK),
    "FOLLOWUP_PLUGINS": "tests.reliability.slow_bulk",
}


def seed_leads(db, tenant, n):
    now = clock.now()
    coordinator = tenant.users["treatment_coordinator"].id
    with db.unit_of_work() as session:
        source_id = session.scalar(
            sa.text("SELECT id FROM lead_sources WHERE clinic_id = :c LIMIT 1"), {"c": tenant.id}
        )
        session.execute(
            sa.insert(Lead),
            [
                {
                    "clinic_id": tenant.id,
                    "status": "ACTIVE",
                    "pipeline_stage": "new_lead",
                    "stage_entered_at": now,
                    "first_name": f"F{i}",
                    "last_name": "Bulk",
                    "preferred_contact": "PHONE",
                    "patient_relationship": "SELF",
                    "source_id": source_id,
                    "source_campaign": "expo",
                    "treatment_interest": [],
                    "assigned_to_id": coordinator,
                    "created_at": now,
                    "updated_at": now,
                    "created_by": "test",
                    "updated_by": "test",
                }
                for i in range(n)
            ],
        )


def counts(db, bulk_id: int):
    """(tasks of the bulk job, its done count, its status), read on a plain driver connection.

    Not in a unit of work: on SQLite that takes the write lock (BEGIN IMMEDIATE), and the worker's
    chunk transactions, one after another, would keep this read waiting until the bulk was nearly
    done, too late for a kill mid-way. A plain read in WAL mode waits for no writer.
    """
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(
            f"SELECT count(*) FROM {LeadTask.__table__.name} WHERE dedupe_key LIKE 'bulk:{int(bulk_id)}:%'"
        )
        [tasks] = cursor.fetchone()
        cursor.execute(f"SELECT done, status FROM {BulkJob.__table__.name} WHERE id = {int(bulk_id)}")
        done, status = cursor.fetchone()
        connection.rollback()  # PostgreSQL: end the read's transaction
        return tasks, done, status
    finally:
        connection.close()


def test_bulk_over_1000_leads_with_a_worker_killed_mid_way(app, db, client, tenant, monkeypatch, fast):
    monkeypatch.setattr(app.config["SETTINGS"], "bulk_chunk_size", CHUNK)
    seed_leads(db, tenant, LEADS)
    settings = app.config["SETTINGS"]
    with subprocess_worker(
        settings, name="bulkdoomed", queues="bulk", FOLLOWUP_TEST_CHUNK_SLEEP="1.0", **WORKER_ENV
    ) as doomed:
        wait_until_consuming(app, "bulkdoomed")
        resp = client.post(
            "/api/leads/tasks/bulk",
            json={
                "filter": {"source_campaign": "expo"},
                "title": "Expo",
                "type": "CALL",
                "due_in_minutes": 60,
            },
            headers=tenant.headers("treatment_coordinator"),
        )
        assert resp.status_code == 202, resp.get_json()
        bulk_id = resp.get_json()["id"]
        assert resp.get_json()["total"] == LEADS
        wait_for(lambda: counts(db, bulk_id)[0] >= 4 * CHUNK, timeout=60, interval=0.02)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    tasks_at_kill = counts(db, bulk_id)[0]
    assert tasks_at_kill < LEADS, "the kill came too late to test anything"

    with subprocess_worker(settings, name="bulkrescuer", queues="bulk", **WORKER_ENV), sweeping(app):
        wait_for(lambda: counts(db, bulk_id)[2] == "done", timeout=120, interval=0.2)
    assert counts(db, bulk_id) == (LEADS, LEADS, "done")
    with db.unit_of_work() as session:
        per_lead = session.execute(
            sa.select(LeadTask.lead_id, sa.func.count())
            .where(LeadTask.dedupe_key.like(f"bulk:{bulk_id}:%"))
            .group_by(LeadTask.lead_id)
            .having(sa.func.count() > 1)
        ).all()
    assert per_lead == []
