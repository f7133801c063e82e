"""Bulk post-event follow-ups through the API: chunks on the bulk queue, one task per lead, counts."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.bulk.service import CHUNK_KIND
from app.domains.tasks.models import LeadTask
from app.platform import clock
from app.platform.scheduling.models import ScheduledJob
from tests.leadkit import add_user, create_lead
from tests.tasks.taskkit import run_at


def chunk_jobs(app, bulk_id):
    with app.extensions["followup.db"].unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(ScheduledJob)
                .where(ScheduledJob.kind == CHUNK_KIND, ScheduledJob.subject_id == bulk_id)
                .order_by(ScheduledJob.id)
            )
        )


def bulk_tasks(app, bulk_id):
    with app.extensions["followup.db"].unit_of_work() as session:
        return [
            t
            for t in session.scalars(sa.select(LeadTask).order_by(LeadTask.lead_id))
            if (t.origin or {}).get("bulk_job_id") == bulk_id
        ]


def run_chunks(app, bulk_id):
    return [run_at(app, job, clock.now()) for job in chunk_jobs(app, bulk_id)]


@pytest.fixture
def small_chunks(app, monkeypatch):
    monkeypatch.setattr(app.config["SETTINGS"], "bulk_chunk_size", 2)


def post_bulk(client, tenant, body, role="treatment_coordinator", **headers):
    return client.post("/api/leads/tasks/bulk", json=body, headers={**tenant.headers(role), **headers})


def test_bulk_by_ids_makes_one_task_per_lead_once_however_often_chunks_run(app, client, tenant, small_chunks):
    leads = [create_lead(client, tenant, first_name=f"L{i}") for i in range(5)]
    due = clock.now() + timedelta(days=2)
    resp = post_bulk(
        client,
        tenant,
        {"lead_ids": [lead["id"] for lead in leads], "title": "Thanks for visiting our booth", "type": "CALL",
         "due_at": due.isoformat()},
    )  # fmt: skip
    assert resp.status_code == 202, resp.get_json()
    job = resp.get_json()
    assert job["status"] == "pending" and job["total"] == 5 and job["done"] == 0
    jobs = chunk_jobs(app, job["id"])
    assert len(jobs) == 3 and {j.queue for j in jobs} == {"bulk"}
    assert run_chunks(app, job["id"]) == ["done"] * 3
    run_chunks(app, job["id"])  # redelivered: nothing more
    tasks = bulk_tasks(app, job["id"])
    assert [t.lead_id for t in tasks] == [lead["id"] for lead in leads]
    assert {t.dedupe_key for t in tasks} == {f"bulk:{job['id']}:lead:{lead['id']}" for lead in leads}
    assert all(t.assigned_to_id == lead["assigned_to_id"] for t, lead in zip(tasks, leads, strict=True))
    assert all(abs((t.due_at - due).total_seconds()) < 1 for t in tasks)
    got = client.get(f"/api/bulk-jobs/{job['id']}", headers=tenant.headers("front_desk")).get_json()
    assert (got["status"], got["total"], got["done"], got["failed"], got["errors"]) == ("done", 5, 5, 0, [])
    # Each task got its reminder and escalation timers.
    with app.extensions["followup.db"].unit_of_work() as session:
        kinds = session.execute(
            sa.select(ScheduledJob.kind, sa.func.count())
            .where(ScheduledJob.subject_type == "task", ScheduledJob.subject_id.in_([t.id for t in tasks]))
            .group_by(ScheduledJob.kind)
        ).all()
    assert dict(kinds) == {"task.reminder": 5, "task.escalate": 5}


def test_bulk_by_filter_round_robin_and_closed_leads_fail(app, client, tenant, small_chunks):
    c1, c2 = add_user(app, tenant), add_user(app, tenant)
    event = [create_lead(client, tenant, source_campaign="spring-expo") for _ in range(4)]
    create_lead(client, tenant, source_campaign="other")
    lost = client.post(
        f"/api/leads/{event[0]['id']}/lost", json={"reason": "RELOCATED"}, headers=tenant.headers()
    )
    assert lost.status_code == 200, lost.get_json()
    resp = post_bulk(
        client,
        tenant,
        {"filter": {"source_campaign": "spring-expo"}, "title": "Expo follow-up", "type": "CALL",
         "due_in_minutes": 60, "assignee_policy": "round_robin"},
    )  # fmt: skip
    assert resp.status_code == 202, resp.get_json()
    job = resp.get_json()
    assert job["total"] == 3  # the filter takes open leads only
    run_chunks(app, job["id"])
    tasks = bulk_tasks(app, job["id"])
    coordinators = sorted([c1, c2, tenant.users["treatment_coordinator"].id])
    assert [t.assigned_to_id for t in tasks] == [coordinators[i % 3] for i in range(3)]

    # By ids, a closed lead is counted as failed, with its reason.
    resp = post_bulk(
        client,
        tenant,
        {"lead_ids": [e["id"] for e in event], "title": "Again", "type": "CALL", "due_in_minutes": 5,
         "assignee_policy": "user", "user_id": c1},
    )  # fmt: skip
    job = resp.get_json()
    run_chunks(app, job["id"])
    got = client.get(f"/api/bulk-jobs/{job['id']}", headers=tenant.headers()).get_json()
    assert (got["status"], got["done"], got["failed"]) == ("done", 3, 1)
    assert got["errors"] == [{"lead_id": event[0]["id"], "error": "lead is lost"}]
    assert {t.assigned_to_id for t in bulk_tasks(app, job["id"])} == {c1}


def test_bulk_from_a_template(app, client, tenant):
    template = client.post(
        "/api/task-templates",
        json={
            "name": "expo",
            "title": "Expo call",
            "type": "CALL",
            "priority": "HIGH",
            "due_offset_minutes": 90,
        },
        headers=tenant.headers(),
    )
    assert template.status_code == 201, template.get_json()
    lead = create_lead(client, tenant)
    resp = post_bulk(client, tenant, {"lead_ids": [lead["id"]], "template_id": template.get_json()["id"]})
    assert resp.status_code == 202, resp.get_json()
    run_chunks(app, resp.get_json()["id"])
    [task] = bulk_tasks(app, resp.get_json()["id"])
    assert (task.title, task.priority, task.template_id) == ("Expo call", "HIGH", template.get_json()["id"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "type": "CALL", "due_in_minutes": 5}, "lead_ids"),
        ({"lead_ids": [1], "filter": {}, "title": "x", "type": "CALL", "due_in_minutes": 5}, "lead_ids"),
        ({"lead_ids": [1], "type": "CALL", "due_in_minutes": 5}, "title"),
        ({"lead_ids": [1], "title": "x", "type": "CALL"}, "due_at"),
        ({"lead_ids": [1], "title": "x", "type": "CALL", "due_in_minutes": 5,
          "assignee_policy": "user"}, "user_id"),
        ({"lead_ids": [1], "title": "x", "type": "CALL", "due_in_minutes": 5, "assignee_policy": "boss"},
         "assignee_policy"),
        ({"lead_ids": ["a"], "title": "x", "type": "CALL", "due_in_minutes": 5}, "lead_ids"),
        ({"filter": {"created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"},
          "title": "x", "type": "CALL", "due_in_minutes": 5}, "filter"),
    ],
)  # fmt: skip
def test_bad_input_is_422_naming_the_field(client, tenant, body, field):
    lead = create_lead(client, tenant)
    if body.get("lead_ids") == [1]:
        body = {**body, "lead_ids": [lead["id"]]}
    resp = post_bulk(client, tenant, body)
    assert resp.status_code == 422, resp.get_json()
    assert field in str(resp.get_json()["errors"]), resp.get_json()


def test_other_clinics_leads_and_bulk_jobs_are_not_found(app, client, tenant, make_tenant):
    other = make_tenant("Other")
    theirs = create_lead(client, other)
    mine = create_lead(client, tenant)
    resp = post_bulk(
        client,
        tenant,
        {"lead_ids": [mine["id"], theirs["id"]], "title": "x", "type": "CALL", "due_in_minutes": 5},
    )
    assert resp.status_code == 404
    assert str(theirs["id"]) in resp.get_json()["message"]
    resp = post_bulk(
        client, other, {"lead_ids": [theirs["id"]], "title": "x", "type": "CALL", "due_in_minutes": 5}
    )
    assert resp.status_code == 202
    assert client.get(f"/api/bulk-jobs/{resp.get_json()['id']}", headers=tenant.headers()).status_code == 404
    coordinator = other.users["treatment_coordinator"].id
    resp = post_bulk(
        client,
        tenant,
        {"lead_ids": [mine["id"]], "title": "x", "type": "CALL", "due_in_minutes": 5,
         "assignee_policy": "user", "user_id": coordinator},
    )  # fmt: skip
    assert resp.status_code == 422 and "user_id" in resp.get_json()["errors"]["json"]
