"""Idempotency-Key on POSTs: a replay answers the first response and writes nothing; another body is a 422."""

import threading

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.leads.models import Lead
from app.domains.tasks.models import LeadTask
from tests.leadkit import create_lead


def count(db, model, *where):
    with db.unit_of_work() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_lead_create_replays_the_first_answer_and_writes_once(client, db, tenant):
    headers = {**tenant.headers("front_desk"), "Idempotency-Key": "form-42"}
    body = {"first_name": "Ann", "last_name": "Lee"}
    first = client.post("/api/leads", json=body, headers=headers)
    assert first.status_code == 201
    again = client.post("/api/leads", json={"last_name": "Lee", "first_name": "Ann"}, headers=headers)
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(db, Lead) == 1


def test_same_key_other_body_is_422_naming_the_header(client, db, tenant):
    headers = {**tenant.headers("front_desk"), "Idempotency-Key": "k1"}
    assert (
        client.post("/api/leads", json={"first_name": "A", "last_name": "B"}, headers=headers).status_code
        == 201
    )
    resp = client.post("/api/leads", json={"first_name": "C", "last_name": "D"}, headers=headers)
    assert resp.status_code == 422
    assert "Idempotency-Key" in resp.get_json()["errors"]["headers"]
    assert count(db, Lead) == 1


def test_same_key_other_query_string_is_422(client, db, tenant):
    """`?reject_duplicates=true` changes what the POST does: it is another request, not a replay."""
    headers = {**tenant.headers("front_desk"), "Idempotency-Key": "q1"}
    body = {"first_name": "A", "last_name": "B"}
    assert client.post("/api/leads", json=body, headers=headers).status_code == 201
    resp = client.post("/api/leads?reject_duplicates=true", json=body, headers=headers)
    assert resp.status_code == 422 and "Idempotency-Key" in resp.get_json()["errors"]["headers"]
    assert count(db, Lead) == 1


def test_keys_are_per_actor_and_a_failed_request_frees_its_key(client, db, tenant):
    body = {"first_name": "A", "last_name": "B"}
    for role in ("front_desk", "clinic_admin"):
        resp = client.post(
            "/api/leads", json=body, headers={**tenant.headers(role), "Idempotency-Key": "same"}
        )
        assert resp.status_code == 201 and "Idempotent-Replayed" not in resp.headers
    assert count(db, Lead) == 2
    headers = {**tenant.headers("front_desk"), "Idempotency-Key": "bad-then-good"}
    assert client.post("/api/leads", json={"first_name": "A"}, headers=headers).status_code == 422
    assert client.post("/api/leads", json={"first_name": "A"}, headers=headers).status_code == 422


def test_tasks_activities_and_bulk_are_idempotent(client, db, tenant):
    lead = create_lead(client, tenant)
    headers = {**tenant.headers("treatment_coordinator"), "Idempotency-Key": "t-1"}
    task = {"title": "Call", "type": "CALL", "due_in_minutes": 30}
    for _ in range(2):
        assert client.post(f"/api/leads/{lead['id']}/tasks", json=task, headers=headers).status_code == 201
    assert count(db, LeadTask) == 1
    headers["Idempotency-Key"] = "a-1"
    activity = {"type": "NOTE", "notes": "called back"}
    answers = [
        client.post(f"/api/leads/{lead['id']}/activities", json=activity, headers=headers) for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201] and answers[0].get_json() == answers[1].get_json()
    assert count(db, LeadActivity, LeadActivity.type == "NOTE") == 1
    headers["Idempotency-Key"] = "b-1"
    bulk = {"lead_ids": [lead["id"]], "title": "x", "type": "CALL", "due_in_minutes": 5}
    answers = [client.post("/api/leads/tasks/bulk", json=bulk, headers=headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 202] and answers[0].get_json() == answers[1].get_json()


def test_concurrent_duplicates_write_once(app, db, tenant):
    headers = {**tenant.headers("front_desk"), "Idempotency-Key": "race"}
    barrier, statuses = threading.Barrier(4), []

    def post():
        client = app.test_client()
        barrier.wait()
        statuses.append(
            client.post("/api/leads", json={"first_name": "R", "last_name": "C"}, headers=headers).status_code
        )

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count(db, Lead) == 1
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}


def test_an_oversized_key_is_422_naming_the_header(client, tenant):
    headers = {**tenant.headers("front_desk"), "Idempotency-Key": "x" * 201}
    resp = client.post("/api/leads", json={"first_name": "A", "last_name": "B"}, headers=headers)
    assert resp.status_code == 422 and "Idempotency-Key" in resp.get_json()["errors"]["headers"]
