"""Assignment: round robin, capacity, source policies; out-of-office hand-over; manual assignment."""

from __future__ import annotations

from collections import Counter

import pytest

from app import create_app
from tests.leadkit import add_user, create_lead, events, get_lead, set_user, source_ids


def _policy(client, tenant, policy: str) -> None:
    resp = client.put("/api/clinic", json={"assignment_policy": policy}, headers=tenant.headers())
    assert resp.status_code == 200


def _owners(client, tenant, n: int, **fields) -> list[int]:
    return [create_lead(client, tenant, first_name=f"L{i}", **fields)["assigned_to_id"] for i in range(n)]


def _timeline(client, tenant, lead_id):
    return client.get(f"/api/leads/{lead_id}/activities", headers=tenant.headers()).get_json()


def test_round_robin_spreads_100_leads_over_3_coordinators_evenly(app, client, tenant):
    coordinators = [tenant.users["treatment_coordinator"].id, add_user(app, tenant), add_user(app, tenant)]
    counts = Counter(_owners(client, tenant, 100))
    assert set(counts) == set(coordinators)
    assert max(counts.values()) - min(counts.values()) <= 1
    # Admins and front desk never get leads while coordinators are available.
    assert tenant.users["clinic_admin"].id not in counts


def test_the_rotation_is_shared_by_every_process(app, client, tenant):
    coordinators = [tenant.users["treatment_coordinator"].id, add_user(app, tenant), add_user(app, tenant)]
    # A second app (another web process): same database, its own engine and memory.
    other_process = create_app(app.config["SETTINGS"]).test_client()
    owners = []
    for i in range(12):
        owners.append(
            create_lead(other_process if i % 2 else client, tenant, first_name=f"L{i}")["assigned_to_id"]
        )
    assert owners == coordinators * 4


def test_out_of_office_and_inactive_coordinators_are_skipped(app, client, tenant):
    away = add_user(app, tenant, out_of_office=True)
    gone = add_user(app, tenant, active=False)
    here = add_user(app, tenant)
    owners = set(_owners(client, tenant, 6))
    assert owners == {tenant.users["treatment_coordinator"].id, here}
    assert away not in owners and gone not in owners


def test_without_an_available_coordinator_a_clinic_admin_takes_the_lead(app, client, tenant):
    set_user(app, tenant.users["treatment_coordinator"].id, out_of_office=True)
    lead = create_lead(client, tenant)
    assert lead["assigned_to_id"] == tenant.users["clinic_admin"].id
    reason = _timeline(client, tenant, lead["id"])[0]["details"]["reason"]
    assert "clinic admin" in reason


def test_capacity_gives_the_lead_to_the_least_loaded_below_their_maximum(app, client, tenant):
    _policy(client, tenant, "capacity")
    busy = tenant.users["treatment_coordinator"].id
    for i in range(3):  # busy owns three leads before the others join
        assert create_lead(client, tenant, first_name=f"Old{i}")["assigned_to_id"] == busy
    small = add_user(app, tenant, max_open_leads=1)
    roomy = add_user(app, tenant)
    owners = _owners(client, tenant, 5)
    # small takes one (then is full), roomy catches up to busy, then they alternate.
    assert Counter(owners) == Counter({small: 1, roomy: 3, busy: 1})
    lead = create_lead(client, tenant, first_name="Next")
    assert "capacity policy" in _timeline(client, tenant, lead["id"])[0]["details"]["reason"]


def test_capacity_counts_only_open_leads(app, client, tenant):
    _policy(client, tenant, "capacity")
    first = tenant.users["treatment_coordinator"].id
    h = tenant.headers("treatment_coordinator")
    old = [create_lead(client, tenant, first_name=f"Old{i}")["id"] for i in range(2)]
    client.post(f"/api/leads/{old[0]}/lost", json={"reason": "OTHER"}, headers=h)
    client.post(f"/api/leads/{old[1]}/convert", headers=h)
    second = add_user(app, tenant)
    # Both have zero open leads: the turn decides, then they alternate.
    assert sorted(_owners(client, tenant, 4)) == sorted([first, first, second, second])


def test_when_everyone_is_full_the_least_loaded_gets_it_and_the_reason_says_so(app, client, tenant):
    _policy(client, tenant, "capacity")
    set_user(app, tenant.users["treatment_coordinator"].id, max_open_leads=1)
    other = add_user(app, tenant, max_open_leads=2)
    owners = _owners(client, tenant, 3)
    assert Counter(owners) == Counter({tenant.users["treatment_coordinator"].id: 1, other: 2})
    overflow = create_lead(client, tenant, first_name="Overflow")
    assert overflow["assigned_to_id"] == tenant.users["treatment_coordinator"].id  # 1 open vs 2
    reason = _timeline(client, tenant, overflow["id"])[0]["details"]["reason"]
    assert "every coordinator is at capacity" in reason


def test_source_policy_uses_the_sources_coordinators_in_turn(app, client, tenant):
    _policy(client, tenant, "source")
    a, b = add_user(app, tenant), add_user(app, tenant)
    referral = client.post(
        "/api/lead-sources",
        json={"name": "Dr. Patel", "category": "DOCTOR_REFERRAL", "coordinator_ids": [a, b]},
        headers=tenant.headers(),
    ).get_json()["id"]
    owners = _owners(client, tenant, 4, source_id=referral)
    assert owners == [a, b, a, b]
    lead = create_lead(client, tenant, first_name="Ref", source_id=referral)
    assert "Dr. Patel" in _timeline(client, tenant, lead["id"])[0]["details"]["reason"]


def test_source_policy_falls_back_to_round_robin(app, client, tenant):
    _policy(client, tenant, "source")
    mapped = add_user(app, tenant)
    unmapped = add_user(app, tenant)
    walk_in = source_ids(client, tenant)["WALK_IN"]
    referral = client.post(
        "/api/lead-sources",
        json={"name": "Dr. Chen", "category": "DOCTOR_REFERRAL", "coordinator_ids": [mapped]},
        headers=tenant.headers(),
    ).get_json()["id"]
    unmapped_owners = set(_owners(client, tenant, 3, source_id=walk_in))
    assert unmapped_owners == {tenant.users["treatment_coordinator"].id, mapped, unmapped}
    set_user(app, mapped, out_of_office=True)
    lead = create_lead(client, tenant, first_name="Ref", source_id=referral)
    assert lead["assigned_to_id"] in {tenant.users["treatment_coordinator"].id, unmapped}
    assert "round robin" in _timeline(client, tenant, lead["id"])[0]["details"]["reason"]


def test_going_out_of_office_hands_open_leads_to_others_by_the_policy(app, client, tenant, db):
    leaving = tenant.users["treatment_coordinator"].id
    h = tenant.headers("treatment_coordinator")
    mine = [create_lead(client, tenant, first_name=f"M{i}")["id"] for i in range(4)]
    lost = mine.pop()
    client.post(f"/api/leads/{lost}/lost", json={"reason": "OTHER"}, headers=h)
    a, b = add_user(app, tenant), add_user(app, tenant)
    resp = client.put(f"/api/users/{leaving}", json={"out_of_office": True}, headers=tenant.headers())
    assert resp.status_code == 200
    new_owners = [get_lead(client, tenant, lead_id).get_json()["assigned_to_id"] for lead_id in mine]
    assert set(new_owners) == {a, b} and leaving not in new_owners
    assert get_lead(client, tenant, lost).get_json()["assigned_to_id"] == leaving  # closed leads stay
    change = _timeline(client, tenant, mine[0])[0]
    assert change["type"] == "ASSIGNMENT_CHANGE"
    assert change["details"]["from_user_id"] == leaving
    assert change["details"]["to_user_id"] in (a, b)
    assert "out of office" in change["details"]["reason"]
    assert change["actor"] == f"user:{tenant.users['clinic_admin'].id}"
    handed = [e for e in events(db, "lead.assigned") if e.payload["from_user_id"] == leaving]
    assert sorted(e.subject_id for e in handed) == sorted(mine)


def test_deactivating_a_user_hands_over_their_leads_too(app, client, tenant):
    leaving = tenant.users["treatment_coordinator"].id
    lead = create_lead(client, tenant)
    taker = add_user(app, tenant)
    assert (
        client.put(f"/api/users/{leaving}", json={"active": False}, headers=tenant.headers()).status_code
        == 200
    )
    assert get_lead(client, tenant, lead["id"]).get_json()["assigned_to_id"] == taker
    assert "inactive" in _timeline(client, tenant, lead["id"])[0]["details"]["reason"]


def test_with_nobody_to_take_over_the_lead_stays_and_the_timeline_says_why(app, client, tenant):
    leaving = tenant.users["treatment_coordinator"].id
    lead = create_lead(client, tenant)
    set_user(app, tenant.users["clinic_admin"].id, out_of_office=True)
    # The admin account is out of office but can still act; nobody else can own leads.
    resp = client.put(f"/api/users/{leaving}", json={"out_of_office": True}, headers=tenant.headers())
    assert resp.status_code == 200
    assert get_lead(client, tenant, lead["id"]).get_json()["assigned_to_id"] == leaving
    note = _timeline(client, tenant, lead["id"])[0]
    assert note["type"] == "ASSIGNMENT_CHANGE"
    assert note["details"]["from_user_id"] == note["details"]["to_user_id"] == leaving
    assert "no available" in note["details"]["reason"]


def test_manual_assignment_to_a_coordinator_or_admin(app, client, tenant, db):
    lead = create_lead(client, tenant)
    admin = tenant.users["clinic_admin"].id
    resp = client.post(
        f"/api/leads/{lead['id']}/assign",
        json={"user_id": admin, "reason": "VIP family"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert resp.status_code == 200
    assert resp.get_json()["assigned_to_id"] == admin
    assert resp.get_json()["assigned_at"] > lead["assigned_at"]
    change = _timeline(client, tenant, lead["id"])[0]
    assert change["details"] == {
        "from_user_id": tenant.users["treatment_coordinator"].id,
        "to_user_id": admin,
        "reason": "manual: VIP family",
    }
    # Assigning to the current owner again changes nothing and logs nothing.
    before = len(events(db, "lead.assigned", lead_id=lead["id"]))
    again = client.post(f"/api/leads/{lead['id']}/assign", json={"user_id": admin}, headers=tenant.headers())
    assert again.status_code == 200
    assert len(events(db, "lead.assigned", lead_id=lead["id"])) == before


def test_manual_assignment_refuses_users_who_cannot_own_leads(app, client, tenant, make_tenant):
    lead = create_lead(client, tenant)
    inactive = add_user(app, tenant, active=False)
    away = add_user(app, tenant, out_of_office=True)
    foreign = make_tenant("Other").users["treatment_coordinator"].id
    for user_id in (
        tenant.users["front_desk"].id,
        tenant.users["doctor"].id,
        inactive,
        away,
        foreign,
        999999,
    ):
        resp = client.post(
            f"/api/leads/{lead['id']}/assign", json={"user_id": user_id}, headers=tenant.headers()
        )
        assert resp.status_code == 422, user_id
        assert "user_id" in resp.get_json()["errors"]["json"]
    for body in ({}, {"user_id": "abc"}, {"user_id": None}):
        resp = client.post(f"/api/leads/{lead['id']}/assign", json=body, headers=tenant.headers())
        assert resp.status_code == 422 and "user_id" in resp.get_json()["errors"]["json"]


@pytest.mark.parametrize("role", ["front_desk", "doctor"])
def test_only_roles_with_lead_assign_may_assign(client, tenant, role):
    lead = create_lead(client, tenant)
    resp = client.post(
        f"/api/leads/{lead['id']}/assign",
        json={"user_id": tenant.users["clinic_admin"].id},
        headers=tenant.headers(role),
    )
    assert resp.status_code == 403


def _run_waiting_leads_jobs(app) -> int:
    """Run the ledger's pending waiting-leads jobs as a worker would; how many ran."""
    import sqlalchemy as sa

    from app.platform import clock
    from app.platform.app_db import get_db
    from app.platform.scheduling.models import ScheduledJob
    from app.platform.scheduling.runner import run_job

    with app.app_context():
        with get_db().unit_of_work() as session:
            ids = session.scalars(
                sa.select(ScheduledJob.id).where(
                    ScheduledJob.kind == "assignment.waiting_leads",
                    ScheduledJob.status.in_(("pending", "dispatched")),
                )
            ).all()
        for job_id in ids:
            assert run_job(db=get_db(), job_id=job_id, now=clock.now()) == "done"
    return len(ids)


def test_a_lead_captured_when_nobody_could_own_it_gets_an_owner_as_soon_as_someone_can(app, client, tenant):
    """Seed 001, rule 2: every active lead has an owner. Captured while every coordinator and admin
    is away, a lead waits unowned; the coordinator back from out of office takes it at once (a job
    run once the change is committed), and a coordinator added later takes the next one."""
    coordinator, admin = tenant.users["treatment_coordinator"].id, tenant.users["clinic_admin"].id
    set_user(app, coordinator, out_of_office=True)
    set_user(app, admin, out_of_office=True)
    waiting = create_lead(client, tenant, first_name="Waiting")
    assert waiting["assigned_to_id"] is None
    back = client.put(f"/api/users/{coordinator}", json={"out_of_office": False}, headers=tenant.headers())
    assert back.status_code == 200, back.get_json()
    assert _run_waiting_leads_jobs(app) == 1
    assert get_lead(client, tenant, waiting["id"]).get_json()["assigned_to_id"] == coordinator

    set_user(app, coordinator, out_of_office=True)
    later = create_lead(client, tenant, first_name="Later")
    assert later["assigned_to_id"] is None
    made = client.post(
        "/api/users",
        json={
            "email": "new.coordinator@example.com",
            "name": "New Coordinator",
            "role": "treatment_coordinator",
        },
        headers=tenant.headers(),
    )
    assert made.status_code == 201, made.get_json()
    assert _run_waiting_leads_jobs(app) == 1
    assert get_lead(client, tenant, later["id"]).get_json()["assigned_to_id"] == made.get_json()["id"]
