"""My next call (POST /api/me/next-task): a coordinator claims the most urgent task they may work for
a lease, with why; two coordinators asking at once never get the same task; a lease that ends puts
the task back; completing, snoozing or cancelling releases it."""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from app.domains.leads.models import Lead
from app.platform import clock
from tests.auth.test_api_keys import create_key
from tests.automation.kit import add_coordinator
from tests.tasks.taskkit import in_minutes, iso, lead_for
from tests.tasks.test_tasks_api import new_task

COORDINATOR = "treatment_coordinator"


def second_coordinator(client, tenant) -> str:
    """A second coordinator of the clinic; returns the role name its headers go by."""
    user_id = add_coordinator(client, tenant, f"second.{tenant.id}@example.com")
    tenant.users["second"] = SimpleNamespace(id=user_id, clinic_id=tenant.id)
    return "second"


def admins_overdue_task(client, tenant, lead_id, minutes_late=30, **fields) -> dict:
    """A task of the clinic admin, `minutes_late` past due: a teammate's overdue work."""
    return new_task(
        client,
        tenant,
        lead_id,
        role="clinic_admin",
        due_at=iso(in_minutes(-minutes_late)),
        assigned_to_id=tenant.users["clinic_admin"].id,
        **fields,
    )


def next_task(client, tenant, role=COORDINATOR, expect=200, headers=None):
    resp = client.post("/api/me/next-task", headers=headers or tenant.headers(role))
    assert resp.status_code == expect, resp.get_data(as_text=True)
    return resp.get_json() if expect == 200 else None


def test_own_task_first_then_a_teammates_overdue_one_with_why(app, client, tenant):
    lead = lead_for(client, tenant)
    with app.extensions["followup.db"].unit_of_work() as session:  # as the nightly scoring leaves it
        session.execute(sa.update(Lead).where(Lead.id == lead["id"]).values(score=0.42))
    mine = new_task(client, tenant, lead["id"], due_at=iso(in_minutes(30)), priority="HIGH")
    theirs = admins_overdue_task(client, tenant, lead["id"], minutes_late=45)

    first = next_task(client, tenant)
    assert first["task"]["id"] == mine["id"]
    assert first["task"]["claimed_by_id"] == tenant.users[COORDINATOR].id
    assert first["why"]["scope"] == "yours" and 29 <= first["why"]["due_in_minutes"] <= 30
    assert "high priority" in first["why"]["summary"] and "lead score 42%" in first["why"]["summary"]
    assert first["why"]["lead_score"] == 0.42
    # Asking again hands back the task already held.
    assert next_task(client, tenant)["task"]["id"] == mine["id"]

    done = client.post(
        f"/api/leads/tasks/{mine['id']}/complete", json={}, headers=tenant.headers(COORDINATOR)
    )
    assert done.status_code == 200 and done.get_json()["claimed_by_id"] is None
    second = next_task(client, tenant)
    assert second["task"]["id"] == theirs["id"] and second["why"]["scope"] == "team_overdue"
    assert 44 <= second["why"]["overdue_minutes"] <= 46 and "overdue by" in second["why"]["summary"]
    # Held: the admin's own next-task does not hand it out meanwhile.
    next_task(client, tenant, "clinic_admin", expect=204)

    cancelled = client.post(f"/api/leads/tasks/{theirs['id']}/cancel", headers=tenant.headers(COORDINATOR))
    assert cancelled.status_code == 200 and cancelled.get_json()["claimed_until"] is None
    next_task(client, tenant, expect=204)


def test_a_clinic_may_keep_teammates_tasks_out_of_next_task(client, tenant):
    lead = lead_for(client, tenant)
    admins_overdue_task(client, tenant, lead["id"])
    resp = client.put(
        "/api/clinic", json={"settings": {"next_task_team_overdue": False}}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    next_task(client, tenant, expect=204)
    next_task(client, tenant, "clinic_admin")  # the admin's own task


def test_two_coordinators_asking_at_once_get_different_tasks(app, client, tenant):
    second = second_coordinator(client, tenant)
    lead = lead_for(client, tenant)
    for _round in range(3):
        made = {admins_overdue_task(client, tenant, lead["id"])["id"] for _ in range(2)}
        headers = {role: tenant.headers(role) for role in (COORDINATOR, second)}
        barrier, got = threading.Barrier(2), {}

        def ask(role, barrier=barrier, got=got, headers=headers):
            with app.test_client() as own_client:
                barrier.wait()
                got[role] = own_client.post("/api/me/next-task", headers=headers[role])

        threads = [threading.Thread(target=ask, args=(role,)) for role in headers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {resp.status_code for resp in got.values()} == {200}, [r.get_data() for r in got.values()]
        ids = {resp.get_json()["task"]["id"] for resp in got.values()}
        assert ids == made  # one each, never the same one
        next_task(client, tenant, "clinic_admin", expect=204)  # both held: nothing for the admin
        for role, resp in got.items():
            task_id = resp.get_json()["task"]["id"]
            done = client.post(f"/api/leads/tasks/{task_id}/complete", json={}, headers=tenant.headers(role))
            assert done.status_code == 200


@pytest.fixture
def at(monkeypatch):
    """Sets the web edge's clock: every request after at(t) runs at t (tokens are made before)."""
    start = clock.now()

    def move(minutes: float):
        monkeypatch.setattr(clock, "now", lambda: start + timedelta(minutes=minutes))

    return move


def test_a_lease_ends_and_the_task_returns_and_renewing_keeps_it(client, tenant, at):
    second = second_coordinator(client, tenant)
    lead = lead_for(client, tenant)
    task = admins_overdue_task(client, tenant, lead["id"])
    mine, theirs = tenant.headers(COORDINATOR), tenant.headers(second)
    at(0)
    claim = next_task(client, tenant, headers=mine)
    assert claim["task"]["id"] == task["id"]
    at(9)
    next_task(client, tenant, expect=204, headers=theirs)  # held for 10 minutes
    renewed = client.post(f"/api/me/next-task/{task['id']}/renew", headers=mine)
    assert renewed.status_code == 200 and renewed.get_json()["claimed_until"] > claim["claimed_until"]
    at(15)
    next_task(client, tenant, expect=204, headers=theirs)  # the renewal holds it until minute 19
    at(20)
    taken = next_task(client, tenant, headers=theirs)  # the lease ended: the task is back
    assert taken["task"]["id"] == task["id"]
    assert taken["task"]["claimed_by_id"] == tenant.users[second].id
    late = client.post(f"/api/me/next-task/{task['id']}/renew", headers=mine)
    assert late.status_code == 409, late.get_json()


def test_the_clinics_lease_and_a_snooze_releases(client, tenant, at):
    second = second_coordinator(client, tenant)
    lead = lead_for(client, tenant)
    task = admins_overdue_task(client, tenant, lead["id"])
    resp = client.put(
        "/api/clinic", json={"settings": {"next_task_lease_minutes": 2}}, headers=tenant.headers()
    )
    assert resp.status_code == 200
    mine, theirs = tenant.headers(COORDINATOR), tenant.headers(second)
    at(0)
    next_task(client, tenant, headers=mine)
    at(1)
    next_task(client, tenant, expect=204, headers=theirs)
    at(3)
    assert next_task(client, tenant, headers=theirs)["task"]["id"] == task["id"]
    snoozed = client.post(f"/api/leads/tasks/{task['id']}/snooze", json={"minutes": 1}, headers=theirs)
    assert snoozed.status_code == 200 and snoozed.get_json()["claimed_by_id"] is None


def test_who_may_ask_and_another_clinics_task(client, tenant, make_tenant):
    for role in ("front_desk", "doctor"):
        next_task(client, tenant, role, expect=403)
    key = create_key(client, tenant, ["lead:read", "lead:update"])["key"]
    next_task(client, tenant, expect=403, headers={"X-API-Key": key})  # a key has no work of its own
    lead = lead_for(client, tenant)
    task = admins_overdue_task(client, tenant, lead["id"])
    other = make_tenant("Other Clinic")
    resp = client.post(f"/api/me/next-task/{task['id']}/renew", headers=other.headers(COORDINATOR))
    assert resp.status_code == 404
    resp = client.post("/api/me/next-task/999999/renew", headers=tenant.headers(COORDINATOR))
    assert resp.status_code == 404
    bad = client.put(
        "/api/clinic", json={"settings": {"next_task_lease_minutes": 0}}, headers=tenant.headers()
    )
    assert bad.status_code == 422 and "next_task_lease_minutes" in str(bad.get_json())
