"""GET /api/jobs, GET /api/jobs/<id>, POST /api/jobs/<id>/retry: clinic-scoped, lead:configure."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from app.platform import clock
from app.platform.app_db import get_db
from app.platform.scheduling import run_job
from tests.ledger import job, queued_job_ids, schedule


@pytest.fixture
def jobs(app, db, make_tenant):
    """Two clinics' jobs: the first clinic has four jobs in every interesting state, the second one."""
    mine, theirs = make_tenant("Mine"), make_tenant("Theirs")
    now = clock.now()
    with app.app_context():
        with db.unit_of_work() as session:

            def add(tenant, key, due_in, kind="test.effect", **fields):
                return schedule(
                    session=session,
                    kind=kind,
                    due_at=now + timedelta(seconds=due_in),
                    dedupe_key=key,
                    now=now,
                    clinic_id=tenant.id,
                    **fields,
                )

            ran = add(
                mine, "ran", -60, subject_type="lead", subject_id=7, origin={"rule_id": 1, "version": 3}
            )
            failed = add(
                mine, "failed", -30, kind="test.fails", subject_type="lead", subject_id=7, max_attempts=1
            )
            later = add(mine, "later", 86400, subject_type="task", subject_id=42)
            notify = add(mine, "notify", 10, kind="test.notify", subject_type="lead", subject_id=8)
            other = add(theirs, "other", 0, subject_type="lead", subject_id=7)
            system = add(mine, "system", 5)
            system.clinic_id = None
        assert run_job(db=get_db(), job_id=ran.id, now=now) == "done"
        assert run_job(db=get_db(), job_id=failed.id, now=now) == "dead"
    return {
        "mine": mine, "theirs": theirs, "ran": ran, "failed": failed, "later": later, "notify": notify,
        "other": other, "system": system, "now": now,
    }  # fmt: skip


def ids(resp):
    return [item["id"] for item in resp.get_json()]


def test_list_is_clinic_scoped_and_newest_due_first(client, jobs):
    resp = client.get("/api/jobs", headers=jobs["mine"].headers())
    assert resp.status_code == 200
    assert ids(resp) == [jobs["later"].id, jobs["notify"].id, jobs["failed"].id, jobs["ran"].id]
    assert json.loads(resp.headers["X-Pagination"])["total"] == 4
    assert ids(client.get("/api/jobs", headers=jobs["theirs"].headers())) == [jobs["other"].id]


def test_list_filters_by_status_kind_and_subject(client, jobs):
    headers = jobs["mine"].headers()

    def listed(query):
        resp = client.get(f"/api/jobs?{query}", headers=headers)
        assert resp.status_code == 200, resp.get_json()
        return ids(resp)

    assert listed("status=dead") == [jobs["failed"].id]
    assert listed("status=failed") == []
    assert listed("status=pending") == [jobs["later"].id]
    assert listed("status=dispatched") == [jobs["notify"].id]
    assert listed("kind=test.notify") == [jobs["notify"].id]
    assert listed("subject=lead:7") == [jobs["failed"].id, jobs["ran"].id]
    assert listed("subject=task:42") == [jobs["later"].id]
    assert listed("subject=lead:7&status=done") == [jobs["ran"].id]
    assert listed("page_size=2&page=2") == [jobs["failed"].id, jobs["ran"].id]


@pytest.mark.parametrize("bad", ["lead", "lead:", ":7", "lead:seven", "7"])
def test_a_malformed_subject_is_a_422_naming_subject(client, jobs, bad):
    resp = client.get(f"/api/jobs?subject={bad}", headers=jobs["mine"].headers())
    assert resp.status_code == 422
    body = resp.get_json()
    assert "subject" in body["errors"]["query"] and "subject" in body["message"]


def test_an_unknown_status_is_a_422(client, jobs):
    resp = client.get("/api/jobs?status=lost", headers=jobs["mine"].headers())
    assert resp.status_code == 422 and "status" in resp.get_json()["errors"]["query"]


def test_detail_says_what_when_why_and_what_happened(client, jobs):
    resp = client.get(f"/api/jobs/{jobs['ran'].id}", headers=jobs["mine"].headers())
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["kind"] == "test.effect" and body["subject"] == "lead:7" and body["queue"] == "realtime"
    assert body["origin"] == {"rule_id": 1, "version": 3}
    assert body["status"] == "done" and body["attempts"] == 1 and body["last_error"] is None
    assert body["due_at"].endswith("+00:00") and body["dispatched_at"] and body["finished_at"]

    failed = client.get(f"/api/jobs/{jobs['failed'].id}", headers=jobs["mine"].headers()).get_json()
    assert failed["status"] == "dead" and failed["last_error"] == "RuntimeError: the provider said no"


def test_another_clinics_job_and_system_jobs_are_404(client, jobs):
    headers = jobs["mine"].headers()
    for job_id in (jobs["other"].id, jobs["system"].id, 999999):
        assert client.get(f"/api/jobs/{job_id}", headers=headers).status_code == 404
        assert client.post(f"/api/jobs/{job_id}/retry", headers=headers).status_code == 404


def test_only_clinic_admins_see_jobs(client, jobs):
    for role in ("front_desk", "treatment_coordinator", "doctor"):
        assert client.get("/api/jobs", headers=jobs["mine"].headers(role)).status_code == 403


def test_retry_puts_a_failed_job_back_due_now_audited_and_dispatched(app, client, db, jobs, redis):
    redis.flushdb()
    failed = jobs["failed"]
    resp = client.post(f"/api/jobs/{failed.id}/retry", headers=jobs["mine"].headers())
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "pending" and body["attempts"] == 0 and body["finished_at"] is None
    row = job(db, failed.id)
    assert row.status == "dispatched" and row.attempts == 0  # published after the commit
    assert queued_job_ids(redis) == [failed.id]

    audit = client.get(
        f"/api/audit-events?subject=job:{failed.id}", headers=jobs["mine"].headers()
    ).get_json()
    assert [(e["action"], e["before"]["status"], e["after"]["status"]) for e in audit] == [
        ("job.retry", "dead", "pending")
    ]
    assert audit[0]["actor"] == f"user:{jobs['mine'].users['clinic_admin'].id}"

    with app.app_context():  # it runs (and, this handler being what it is, fails again)
        assert run_job(db=get_db(), job_id=failed.id, now=clock.now()) == "dead"
    assert job(db, failed.id).attempts == 1


def test_retry_of_a_job_that_is_not_failed_is_a_409(client, jobs):
    headers = jobs["mine"].headers()
    for name in ("ran", "later", "notify"):
        resp = client.post(f"/api/jobs/{jobs[name].id}/retry", headers=headers)
        assert resp.status_code == 409, name
        assert "only a dead or failed job can be retried" in resp.get_json()["message"]
