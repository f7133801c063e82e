"""A request lost between its write and its stored answer is not made twice by its retry.

The first request's database connection is lost (or its process dies) once the view has written
and the answer is being stored: storing the answer fails, and so does freeing the key, so the
reservation stays unfinished, as a dead process leaves it. Past the lease (a setting) the client
retries with the same key and body: the thing is made once, and that one is the answer.
"""

import threading

import pytest
import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.bulk.models import BulkJob
from app.domains.intake import service as intake
from app.domains.leads.models import Lead
from app.domains.tasks.models import LeadTask
from app.platform.idempotency import service
from tests.leadkit import create_lead


def count(db, model, *where):
    with db.unit_of_work() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def lost_connection(**_):
    lost = ConnectionError("server closed the connection unexpectedly")
    raise sa.exc.OperationalError("UPDATE idempotency_keys", {}, lost)


def post_and_lose_the_answer(client, monkeypatch, path, body, headers):
    with monkeypatch.context() as lost:
        lost.setattr(service, "complete", lost_connection)
        lost.setattr(service, "release", lost_connection)
        assert client.post(path, json=body, headers=headers).status_code == 500


def retry_after_the_lease(app, client, monkeypatch, path, body, headers):
    monkeypatch.setattr(app.config["SETTINGS"], "idempotency_lease_seconds", 0)
    retried = client.post(path, json=body, headers=headers)
    again = client.post(path, json=body, headers=headers)
    assert "Idempotent-Replayed" not in retried.headers and again.headers["Idempotent-Replayed"] == "true"
    assert again.status_code == retried.status_code and again.get_json() == retried.get_json()
    return retried


def test_a_lead_whose_answer_was_lost_is_created_once_by_the_retry(app, client, db, tenant, monkeypatch):
    headers = {**tenant.headers("front_desk"), "Idempotency-Key": "lost-lead"}
    body = {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"}
    post_and_lose_the_answer(client, monkeypatch, "/api/leads", body, headers)

    retried = retry_after_the_lease(app, client, monkeypatch, "/api/leads", body, headers)

    assert retried.status_code == 201
    with db.unit_of_work() as session:
        assert session.scalars(sa.select(Lead.id)).all() == [retried.get_json()["id"]]
    other = client.post("/api/leads", json={"first_name": "Bob", "last_name": "Lee"}, headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["errors"]["headers"]
    assert count(db, Lead) == 1


def _task(client, tenant, lead):
    headers = tenant.headers("treatment_coordinator")
    body = {"title": "Call", "type": "CALL", "due_in_minutes": 30}
    resp = client.post(f"/api/leads/{lead['id']}/tasks", json=body, headers=headers)
    assert resp.status_code == 201
    return resp.get_json()


# Every other endpoint that takes an Idempotency-Key and makes something: (role, path, body, what
# it makes), given a lead (and a task of it).
CREATORS = {
    "task": lambda lead, task: (
        "treatment_coordinator",
        f"/api/leads/{lead['id']}/tasks",
        {"title": "Call back", "type": "CALL", "due_in_minutes": 30},
        (LeadTask,),
    ),
    "activity": lambda lead, task: (
        "treatment_coordinator",
        f"/api/leads/{lead['id']}/activities",
        {"type": "NOTE", "notes": "called back"},
        (LeadActivity, LeadActivity.type == "NOTE"),
    ),
    "bulk tasks": lambda lead, task: (
        "treatment_coordinator",
        "/api/leads/tasks/bulk",
        {"lead_ids": [lead["id"]], "title": "x", "type": "CALL", "due_in_minutes": 5},
        (BulkJob,),
    ),
    "bulk task actions": lambda lead, task: (
        "treatment_coordinator",
        "/api/leads/tasks/bulk-actions",
        {"action": "cancel", "task_ids": [task["id"]]},
        (BulkJob,),
    ),
    "lead import": lambda lead, task: (
        "front_desk",
        "/api/leads/import",
        [{"first_name": "Imported", "last_name": "Lead"}],
        (BulkJob,),
    ),
}


@pytest.mark.parametrize("creator", CREATORS)
def test_every_keyed_creation_whose_answer_was_lost_is_made_once(
    app, client, db, tenant, monkeypatch, creator
):
    lead = create_lead(client, tenant)
    role, path, body, made = CREATORS[creator](lead, _task(client, tenant, lead))
    headers = {**tenant.headers(role), "Idempotency-Key": f"lost-{creator}"}
    before = count(db, *made)
    post_and_lose_the_answer(client, monkeypatch, path, body, headers)

    retry_after_the_lease(app, client, monkeypatch, path, body, headers)

    assert count(db, *made) == before + 1


def test_a_request_still_running_past_its_lease_gives_way_to_the_retry(app, client, db, tenant, monkeypatch):
    """The first request is slow, not dead: the retry past the lease takes its key over and makes
    the lead; the first then finds its reservation gone, and its lead is rolled back (409). It is
    held before its capture writes (its rows would hold locks the retry's capture waits for)."""
    headers = {**tenant.headers("front_desk"), "Idempotency-Key": "slow-lead"}
    body = {"first_name": "Ann", "last_name": "Lee"}
    capture, in_view, go_on, first = intake.capture_lead, threading.Event(), threading.Event(), []

    def slow_capture(**kwargs):
        if threading.current_thread() is not threading.main_thread():
            in_view.set()
            go_on.wait(timeout=60)
        return capture(**kwargs)

    monkeypatch.setattr(intake, "capture_lead", slow_capture)
    slow = threading.Thread(
        target=lambda: first.append(app.test_client().post("/api/leads", json=body, headers=headers))
    )
    slow.start()
    assert in_view.wait(timeout=60)

    retried = retry_after_the_lease(app, client, monkeypatch, "/api/leads", body, headers)
    go_on.set()
    slow.join()

    assert retried.status_code == 201 and first[0].status_code == 409
    with db.unit_of_work() as session:
        assert session.scalars(sa.select(Lead.id)).all() == [retried.get_json()["id"]]
