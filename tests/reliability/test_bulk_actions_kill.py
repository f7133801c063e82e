"""Bulk task actions survive a worker killed with SIGKILL mid-way: every task rescheduled exactly once,
its timers replaced exactly once (one revision bump, one live set of reminder and escalation jobs)."""

import os
import signal
from datetime import timedelta

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.tasks import creation as task_creation
from app.domains.tasks.models import LeadTask
from app.platform import clock
from app.platform.audit.models import AuditEvent
from app.platform.scheduling.models import ScheduledJob
from tests.reliability.conftest import FAST, sweeping
from tests.reliability.test_bulk_kill import seed_leads
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

TASKS = 300
CHUNK = 20
OFFSET = 45
WORKER_ENV = {f"FOLLOWUP_{name.upper()}": str(value) for name, value in FAST.items()} | {
    "FOLLOWUP_BULK_CHUNK_SIZE": str(CHUNK),
    "FOLLOWUP_PLUGINS": "tests.reliability.slow_task_actions",
}


def seed_tasks(app, db, tenant) -> dict[int, object]:
    """TASKS open tasks (one per seeded lead), due in two hours; {task id: due_at}."""
    seed_leads(db, tenant, TASKS)
    now = clock.now()
    with app.app_context(), db.unit_of_work() as session:
        leads = session.execute(
            sa.text("SELECT id, assigned_to_id FROM leads WHERE clinic_id = :c"), {"c": tenant.id}
        ).all()
        tasks = task_creation.alike_tasks(
            clinic_id=tenant.id,
            fields={"title": "Call", "type": "CALL", "due_at": now + timedelta(hours=2)},
            rows=[{"lead_id": i, "assigned_to_id": a, "dedupe_key": f"seed:{i}"} for i, a in leads],
            origin={"kind": "test"},
            now=now,
        )
        clinic = session.get(Clinic, tenant.id)
        ids = task_creation.write_tasks(session=session, clinic=clinic, tasks=tasks, now=now, bulk=True)
        return due_times(session, ids)


def due_times(session, ids) -> dict:
    return dict(session.execute(sa.select(LeadTask.id, LeadTask.due_at).where(LeadTask.id.in_(ids))).all())


def moved(db) -> int:
    """Tasks at their second revision, read on a plain connection (see test_bulk_kill.counts)."""
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"SELECT count(*) FROM {LeadTask.__table__.name} WHERE revision = 2")
        [n] = cursor.fetchone()
        connection.rollback()
        return n
    finally:
        connection.close()


def bulk_status(client, tenant, bulk_id):
    return client.get(f"/api/bulk-jobs/{bulk_id}", headers=tenant.headers()).get_json()


def test_bulk_reschedule_with_a_worker_killed_mid_way(app, db, client, tenant, monkeypatch, fast):
    monkeypatch.setattr(app.config["SETTINGS"], "bulk_chunk_size", CHUNK)
    due_before = seed_tasks(app, db, tenant)
    settings = app.config["SETTINGS"]
    with subprocess_worker(
        settings, name="actionsdoomed", queues="bulk", FOLLOWUP_TEST_TASK_SLEEP="0.05", **WORKER_ENV
    ) as doomed:
        wait_until_consuming(app, "actionsdoomed")
        resp = client.post(
            "/api/leads/tasks/bulk-actions",
            json={"action": "reschedule", "filter": {"status": ["PENDING"]}, "offset_minutes": OFFSET},
            headers=tenant.headers("treatment_coordinator"),
        )
        assert resp.status_code == 202, resp.get_json()
        bulk_id = resp.get_json()["id"]
        assert resp.get_json()["total"] == TASKS
        wait_for(lambda: moved(db) >= 3 * CHUNK, timeout=60, interval=0.02)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    assert moved(db) < TASKS, "the kill came too late to test anything"

    with subprocess_worker(settings, name="actionsrescuer", queues="bulk", **WORKER_ENV), sweeping(app):
        wait_for(lambda: bulk_status(client, tenant, bulk_id)["status"] == "done", timeout=120, interval=0.2)
    final = bulk_status(client, tenant, bulk_id)
    assert (final["done"], final["failed"]) == (TASKS, 0)

    with db.unit_of_work() as session:
        after = due_times(session, due_before)
        revisions = set(session.scalars(sa.select(LeadTask.revision).where(LeadTask.id.in_(due_before))))
        timers = session.execute(
            sa.select(ScheduledJob.subject_id, ScheduledJob.dedupe_key, ScheduledJob.status).where(
                ScheduledJob.subject_type == "task", ScheduledJob.subject_id.in_(due_before)
            )
        ).all()
        updates = session.execute(
            sa.select(AuditEvent.subject_id, sa.func.count())
            .where(AuditEvent.action == "task.update", AuditEvent.subject_type == "task")
            .group_by(AuditEvent.subject_id)
        ).all()
    # Moved exactly once: by the offset, not twice it.
    assert all(after[i] == due_before[i] + timedelta(minutes=OFFSET) for i in due_before)
    assert revisions == {2}
    live = [t for t in timers if t.status != "cancelled"]
    assert all(":r2:" in t.dedupe_key for t in live)
    assert len(live) == 2 * TASKS  # per task one reminder and one escalation, of the new revision
    assert {t.subject_id for t in live} == set(due_before)
    assert all(t.status == "cancelled" for t in timers if ":r1:" in t.dedupe_key)
    assert len(updates) == TASKS and {n for _, n in updates} == {1}
