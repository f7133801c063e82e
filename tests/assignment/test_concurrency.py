"""Concurrent requests against the real database: the rotation stays exact, a submission stays one lead."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from app.domains.intake import service as intake
from app.platform import clock
from tests.automation.kit import actor_of
from tests.leadkit import add_user, count, signed_headers
from tests.workers import wait_for


def test_concurrent_new_leads_keep_the_round_robin_exact(app, tenant):
    coordinators = [tenant.users["treatment_coordinator"].id, add_user(app, tenant), add_user(app, tenant)]
    headers = tenant.headers("front_desk")

    def create(i: int) -> int:
        resp = app.test_client().post(
            "/api/leads", json={"first_name": f"Parallel{i}", "last_name": "Lead"}, headers=headers
        )
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["assigned_to_id"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        owners = list(pool.map(create, range(30)))
    # Each turn is taken by one atomic statement, so 30 leads are exactly 10 each, not "about".
    assert Counter(owners) == dict.fromkeys(coordinators, 10)


def test_the_same_submission_sent_in_parallel_is_one_lead(app, tenant, db):
    def send(i: int):
        # Each delivery is signed afresh (a different body and signature), as a retrying website would.
        body = json.dumps(
            {
                "submission_id": "form-42",
                "name": "Pat Doe",
                "phone": "415-555-2671",
                "message": f"attempt {i}",
            }
        ).encode()
        resp = app.test_client().post(
            "/api/capture/web-form", data=body, headers=signed_headers(tenant.clinic, body, int(time.time()))
        )
        return resp.status_code, resp.get_json()["lead_id"]

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(send, range(5)))
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 200: 4}
    assert len({lead_id for _, lead_id in results}) == 1
    assert count(db, "leads") == 1


def test_a_put_waiting_on_a_concurrent_change_is_a_412_not_a_lost_update(app, tenant, db):
    client = app.test_client()
    created = client.post(
        "/api/leads", json={"first_name": "Race", "last_name": "Lead"}, headers=tenant.headers()
    )
    lead_id = created.get_json()["id"]
    etag = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).headers["ETag"]
    headers = {**tenant.headers(), "If-Match": etag}

    with db.engine.connect() as other_writer:
        # Another writer holds the lead (row lock on PostgreSQL, the write lock on SQLite) ...
        transaction = other_writer.begin()
        if db.dialect == "postgresql":
            other_writer.execute(sa.text("SELECT id FROM leads WHERE id = :i FOR UPDATE"), {"i": lead_id})
        with ThreadPoolExecutor(max_workers=1) as pool:
            # ... while our PUT, carrying the ETag we read, arrives and has to wait for it.
            pending = pool.submit(
                lambda: app.test_client().put(f"/api/leads/{lead_id}", json={"city": "Mine"}, headers=headers)
            )
            time.sleep(0.5)
            other_writer.execute(sa.text("UPDATE leads SET city = 'Theirs' WHERE id = :i"), {"i": lead_id})
            transaction.commit()
            resp = pending.result(timeout=30)
    assert resp.status_code == 412
    assert client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()["city"] == "Theirs"


def test_a_new_lead_is_not_given_to_a_coordinator_who_goes_away_while_it_is_written(app, tenant, db):
    """The only coordinator goes out of office while a capture is under way: the capture waits for
    that change to commit and then gives the lead to someone available (on PostgreSQL, a capture
    that already picked the coordinator finds them gone when it writes, and picks again)."""
    coordinator, admin = tenant.users["treatment_coordinator"].id, tenant.users["clinic_admin"].id
    body = {"first_name": "Mid", "last_name": "Change"}
    with db.engine.connect() as other_writer:
        transaction = other_writer.begin()
        away = sa.text("UPDATE users SET out_of_office = true WHERE id = :u")
        other_writer.execute(away, {"u": coordinator})
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(
                lambda: app.test_client().post("/api/leads", json=body, headers=tenant.headers("front_desk"))
            )
            if db.dialect == "postgresql":
                wait_for(lambda: _someone_waits_for_a_lock(db, "transactionid", "tuple"), timeout=10)
            else:
                time.sleep(0.5)  # SQLite: the capture waits for this transaction's write lock
            assert not pending.done()
            transaction.commit()
            resp = pending.result(timeout=30)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["assigned_to_id"] == admin
    assert count(db, "leads") == 1
    with db.engine.connect() as conn:
        created = conn.execute(sa.text("SELECT count(*) FROM events WHERE type = 'lead.created'")).scalar()
        owners = conn.execute(
            sa.text("SELECT details FROM lead_activities WHERE type = 'ASSIGNMENT_CHANGE'")
        ).scalars()
        owners = [json.loads(d) if isinstance(d, str) else d for d in owners]
    assert created == 1
    assert [o["to_user_id"] for o in owners] == [admin]


def _someone_waits_for_a_lock(db, *kinds: str) -> bool:
    """Whether a session waits for a lock of one of these kinds (pg_stat_activity's wait_event)."""
    with db.engine.connect() as conn:
        waiting = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND wait_event = ANY(:kinds)"
            ),
            {"kinds": list(kinds)},
        ).scalar()
    return waiting > 0


def test_going_out_of_office_waits_for_a_new_lead_being_given_to_that_user(app, tenant, db):
    """A lead picked for a coordinator whose out-of-office change lands before the lead commits
    still ends up with someone available: the hand-over waits for the picks under way."""
    add_user(app, tenant)
    client = app.test_client()
    with ThreadPoolExecutor(max_workers=1) as pool:
        with app.app_context(), db.unit_of_work() as session:
            made = intake.create_lead(
                session=session,
                actor=actor_of(tenant),
                new=intake.NewLead(data={"first_name": "In", "last_name": "Flight"}),
                now=clock.now(),
            )
            leaving = made.lead.assigned_to_id
            pending = pool.submit(
                lambda: client.put(
                    f"/api/users/{leaving}", json={"out_of_office": True}, headers=tenant.headers()
                )
            )
            if db.dialect == "postgresql":
                wait_for(lambda: _someone_waits_for_a_lock(db, "advisory"), timeout=10)
            else:
                time.sleep(0.5)  # SQLite: the PUT waits for this transaction's write lock
            assert not pending.done()
        # The new lead has committed; the hand-over goes on.
        assert pending.result(timeout=30).status_code == 200
    owner = client.get(f"/api/leads/{made.lead.id}", headers=tenant.headers()).get_json()["assigned_to_id"]
    assert owner not in (None, leaving)
    change = client.get(f"/api/leads/{made.lead.id}/activities", headers=tenant.headers()).get_json()[0]
    assert change["type"] == "ASSIGNMENT_CHANGE" and "out of office" in change["details"]["reason"]
