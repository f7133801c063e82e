"""Every bulk job (GET /api/bulk-jobs), cancel (POST /api/bulk-jobs/:id/cancel) and the
`bulk.completed` event a webhook subscriber receives."""

import pytest
import sqlalchemy as sa

from app.domains.webhooks.models import WebhookDelivery
from app.platform.audit.models import AuditEvent
from tests.bulk.test_bulk import chunk_jobs, post_bulk, run_chunks
from tests.leadkit import create_lead
from tests.tasks.taskkit import run_at
from tests.webhooks.test_webhooks import process_events, subscribe


@pytest.fixture
def small_chunks(app, monkeypatch):
    monkeypatch.setattr(app.config["SETTINGS"], "bulk_chunk_size", 2)


def start(client, tenant, n):
    leads = [create_lead(client, tenant, first_name=f"L{i}") for i in range(n)]
    body = {
        "lead_ids": [lead["id"] for lead in leads],
        "title": "Thanks",
        "type": "CALL",
        "due_in_minutes": 60,
    }
    resp = post_bulk(client, tenant, body)
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["id"]


def test_cancel_stops_the_chunks_not_yet_run_and_is_audited(
    app, client, db, tenant, make_tenant, small_chunks
):
    bulk_id = start(client, tenant, 6)
    first, *rest = chunk_jobs(app, bulk_id)
    run_at(app, first, first.due_at)
    url = f"/api/bulk-jobs/{bulk_id}/cancel"
    assert client.post(url, headers=make_tenant("Other").headers()).status_code == 404
    assert client.post(url, headers=tenant.headers("front_desk")).status_code == 403
    resp = client.post(url, headers=tenant.headers("treatment_coordinator"))
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["status"], resp.get_json()["done"]) == ("cancelled", 2)
    assert {job.status for job in chunk_jobs(app, bulk_id)[1:]} == {"cancelled"}
    for job in rest:
        run_at(app, job, job.due_at)  # a stale delivery of a cancelled chunk does nothing
    after = client.get(f"/api/bulk-jobs/{bulk_id}", headers=tenant.headers()).get_json()
    assert (after["status"], after["done"], after["total"]) == ("cancelled", 2, 6)
    assert client.post(url, headers=tenant.headers()).status_code == 409
    with db.unit_of_work() as session:
        [audit] = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "bulk_job.cancel")).all()
        assert audit.after["status"] == "cancelled" and audit.after["chunks_cancelled"] == 2


def test_the_list_shows_every_bulk_job_newest_first_by_status(app, client, tenant, make_tenant, small_chunks):
    done_id = start(client, tenant, 2)
    run_chunks(app, done_id)
    open_id = start(client, tenant, 2)
    listed = client.get("/api/bulk-jobs", headers=tenant.headers("front_desk"))
    assert listed.status_code == 200
    assert [(j["id"], j["status"]) for j in listed.get_json()] == [(open_id, "pending"), (done_id, "done")]
    assert [
        j["id"] for j in client.get("/api/bulk-jobs?status=done", headers=tenant.headers()).get_json()
    ] == [done_id]
    bad = client.get("/api/bulk-jobs?status=bogus", headers=tenant.headers())
    assert bad.status_code == 422 and "status" in bad.get_json()["errors"]["query"]
    assert client.get("/api/bulk-jobs", headers=make_tenant("Other").headers()).get_json() == []


def test_a_finished_bulk_job_sends_bulk_completed_to_its_subscribers(app, client, db, tenant, small_chunks):
    subscribe(client, tenant, "http://127.0.0.1:9/hook", ["bulk.completed"])
    bulk_id = start(client, tenant, 3)
    run_chunks(app, bulk_id)
    process_events(app, db)
    with db.unit_of_work() as session:
        [delivery] = session.scalars(
            sa.select(WebhookDelivery).where(WebhookDelivery.event_type == "bulk.completed")
        ).all()
        assert delivery.payload["data"] == {
            "bulk_job_id": bulk_id, "kind": "tasks.create", "total": 3, "done": 3, "failed": 0,
        }  # fmt: skip


def test_a_cancelled_import_creates_no_lead_from_its_chunks_not_yet_run(app, client, tenant):
    from app.domains.intake.imports import CHUNK_KIND as IMPORT_CHUNK
    from app.platform.scheduling.models import ScheduledJob

    rows = [{"external_id": f"x-{n}", "first_name": "A", "last_name": f"B{n}"} for n in range(3)]
    resp = client.post("/api/leads/import", json=rows, headers=tenant.headers("treatment_coordinator"))
    assert resp.status_code == 202, resp.get_json()
    bulk_id = resp.get_json()["id"]
    with app.extensions["followup.db"].unit_of_work() as session:
        chunks = list(session.scalars(sa.select(ScheduledJob).where(
            ScheduledJob.kind == IMPORT_CHUNK, ScheduledJob.subject_id == bulk_id)))  # fmt: skip
    cancelled = client.post(f"/api/bulk-jobs/{bulk_id}/cancel", headers=tenant.headers())
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    for job in chunks:
        run_at(app, job, job.due_at)  # a stale delivery of a cancelled chunk does nothing
    assert client.get("/api/leads", headers=tenant.headers()).get_json() == []
