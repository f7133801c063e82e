"""The outbox: each change writes its events exactly once, in its own transaction; none on rollback."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.domains.intake import service as intake
from app.domains.leads.events import LeadUpdated
from app.domains.pipeline import service as pipeline
from app.platform import clock
from app.platform.events import service as events_service
from app.platform.roles import ROLE_PERMISSIONS, Actor, Role
from app.platform.scheduling.models import ScheduledJob
from tests.leadkit import count, create_lead, events, source_ids


def _types(db, lead_id):
    return [e.type for e in events(db, lead_id=lead_id)]


def _new_events(db, lead_id, before):
    return events(db, lead_id=lead_id)[before:]


def test_creating_a_lead_writes_created_assigned_and_the_assignment_activity_once(client, tenant, db):
    walk_in = source_ids(client, tenant)["WALK_IN"]
    lead = create_lead(client, tenant, source_id=walk_in)
    rows = events(db, lead_id=lead["id"])
    assert [e.type for e in rows] == ["lead.created", "lead.assigned", "activity.logged"]
    created, assigned, logged = rows
    coordinator = tenant.users["treatment_coordinator"].id
    assert created.payload["source_category"] == "WALK_IN"
    assert created.payload["source_id"] == walk_in
    assert created.payload["assigned_to_id"] == coordinator
    assert created.payload["pipeline_stage"] == "new_lead"
    assert created.payload["channel"] == "api"
    assert assigned.payload["from_user_id"] is None and assigned.payload["to_user_id"] == coordinator
    assert logged.payload["type"] == "ASSIGNMENT_CHANGE" and logged.payload["system"] is False
    assert all(e.clinic_id == tenant.id and e.processed_at is None and e.attempts == 0 for e in rows)


def test_a_stage_change_writes_one_stage_changed_with_both_stages(client, tenant, db):
    lead = create_lead(client, tenant)
    before = len(events(db, lead_id=lead["id"]))
    client.post(
        f"/api/leads/{lead['id']}/stage", json={"stage": "consultation_scheduled"}, headers=tenant.headers()
    )
    new = _new_events(db, lead["id"], before)
    assert [e.type for e in new] == ["lead.stage_changed", "activity.logged"]
    assert new[0].payload == {
        "lead_id": lead["id"],
        "previous_stage": "new_lead",
        "new_stage": "consultation_scheduled",
        "status": "ACTIVE",
    }
    assert (
        new[1].payload["type"] == "STAGE_CHANGE" and new[1].payload["new_stage"] == "consultation_scheduled"
    )


def test_losing_a_lead_writes_stage_changed_and_lost_once(client, tenant, db):
    lead = create_lead(client, tenant)
    before = len(events(db, lead_id=lead["id"]))
    client.post(f"/api/leads/{lead['id']}/lost", json={"reason": "NO_RESPONSE"}, headers=tenant.headers())
    new = _new_events(db, lead["id"], before)
    assert [e.type for e in new] == ["lead.stage_changed", "activity.logged", "lead.lost"]
    assert new[2].payload == {"lead_id": lead["id"], "previous_stage": "new_lead", "reason": "NO_RESPONSE"}


def test_converting_writes_stage_changed_and_converted_once(client, tenant, db):
    lead = create_lead(client, tenant)
    client.post(
        f"/api/leads/{lead['id']}/stage", json={"stage": "treatment_accepted"}, headers=tenant.headers()
    )
    before = len(events(db, lead_id=lead["id"]))
    client.post(f"/api/leads/{lead['id']}/convert", headers=tenant.headers())
    client.post(f"/api/leads/{lead['id']}/convert", headers=tenant.headers())  # 409: no second event
    new = _new_events(db, lead["id"], before)
    assert [e.type for e in new] == ["lead.stage_changed", "activity.logged", "lead.converted"]
    assert new[2].payload["previous_stage"] == "treatment_accepted"


def test_an_update_writes_one_event_naming_the_changed_fields_and_no_change_writes_none(client, tenant, db):
    lead = create_lead(client, tenant)
    before = len(events(db, lead_id=lead["id"]))
    client.put(
        f"/api/leads/{lead['id']}", json={"city": "Reno", "phone": "415-555-2671"}, headers=tenant.headers()
    )
    client.put(f"/api/leads/{lead['id']}", json={"city": "Reno"}, headers=tenant.headers())  # no change
    new = _new_events(db, lead["id"], before)
    assert [e.type for e in new] == ["lead.updated"]
    assert new[0].payload == {"lead_id": lead["id"], "changed": ["city", "phone"]}


def test_assigning_writes_assigned_with_from_and_to(client, tenant, db):
    lead = create_lead(client, tenant)
    before = len(events(db, lead_id=lead["id"]))
    admin = tenant.users["clinic_admin"].id
    client.post(f"/api/leads/{lead['id']}/assign", json={"user_id": admin}, headers=tenant.headers())
    new = _new_events(db, lead["id"], before)
    assert [e.type for e in new] == ["lead.assigned", "activity.logged"]
    assert (new[0].payload["from_user_id"], new[0].payload["to_user_id"]) == (lead["assigned_to_id"], admin)


def test_a_logged_call_writes_activity_logged_with_type_direction_and_outcome(client, tenant, db):
    lead = create_lead(client, tenant)
    before = len(events(db, lead_id=lead["id"]))
    logged = client.post(
        f"/api/leads/{lead['id']}/activities",
        json={"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "no_answer"},
        headers=tenant.headers(),
    ).get_json()
    new = _new_events(db, lead["id"], before)
    assert [e.type for e in new] == ["activity.logged"]
    assert new[0].payload["activity_id"] == logged["id"]
    assert (new[0].payload["type"], new[0].payload["direction"], new[0].payload["outcome"]) == (
        "PHONE_CALL",
        "OUTBOUND",
        "no_answer",
    )


def test_refused_requests_write_no_events(client, tenant, db):
    lead = create_lead(client, tenant, phone="415-555-2671")
    before = len(events(db))
    h = tenant.headers()
    refused = [
        client.post(f"/api/leads/{lead['id']}/stage", json={"stage": "nowhere"}, headers=h),
        client.post(f"/api/leads/{lead['id']}/stage", json={"stage": "new_lead"}, headers=h),
        client.post(f"/api/leads/{lead['id']}/lost", json={"reason": "MEH"}, headers=h),
        client.put(f"/api/leads/{lead['id']}", json={"phone": "12"}, headers=h),
        client.put(f"/api/leads/{lead['id']}", json={"city": "X"}, headers={**h, "If-Match": '"stale"'}),
        client.post(
            f"/api/leads/{lead['id']}/assign", json={"user_id": tenant.users["doctor"].id}, headers=h
        ),
        client.post(f"/api/leads/{lead['id']}/activities", json={"type": "STAGE_CHANGE"}, headers=h),
        client.post(
            "/api/leads?reject_duplicates=true",
            json={**{"first_name": "A", "last_name": "B"}, "phone": "+14155552671"},
            headers=h,
        ),
        client.put(f"/api/leads/{lead['id']}", json={"city": "X"}, headers=tenant.headers("front_desk")),
    ]
    assert all(400 <= r.status_code < 500 for r in refused), [r.status_code for r in refused]
    assert len(events(db)) == before


def _admin(tenant) -> Actor:
    return Actor(
        clinic_id=tenant.id,
        user_id=tenant.users["clinic_admin"].id,
        role=Role.CLINIC_ADMIN.value,
        permissions=ROLE_PERMISSIONS[Role.CLINIC_ADMIN],
    )


def test_a_rolled_back_change_leaves_no_event_and_no_trace(app, client, tenant, db):
    lead = create_lead(client, tenant)
    events_before, activities_before, leads_before = (
        len(events(db)),
        count(db, "lead_activities"),
        count(db, "leads"),
    )

    class Boom(Exception):
        pass

    with app.app_context(), pytest.raises(Boom), db.unit_of_work() as session:
        now = clock.now()
        made = intake.create_lead(
            session=session,
            actor=_admin(tenant),
            new=intake.NewLead(data={"first_name": "Ghost", "last_name": "Lead"}),
            now=now,
        )
        pipeline.change_stage(
            session=session,
            actor=_admin(tenant),
            lead_id=lead["id"],
            change=pipeline.StageChange(stage="contacted"),
            now=now,
        )
        pipeline.convert_lead(session=session, actor=_admin(tenant), lead_id=made.lead.id, now=now)
        session.flush()
        assert (
            len(
                events_service.for_subject(
                    session=session, clinic_id=tenant.id, subject_type="lead", subject_id=made.lead.id
                )
            )
            >= 3
        )
        raise Boom("the unit of work fails after the changes were written")

    assert len(events(db)) == events_before
    assert count(db, "lead_activities") == activities_before
    assert count(db, "leads") == leads_before
    assert (
        client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["pipeline_stage"]
        == "new_lead"
    )


def test_the_consumer_reads_pending_events_in_the_order_they_were_written(app, client, tenant, db):
    first = create_lead(client, tenant)
    second = create_lead(client, tenant, first_name="Second")
    with app.app_context(), db.unit_of_work() as session:
        pending = events_service.pending(session=session, limit=100)
        assert [e.id for e in pending] == sorted(e.id for e in pending)
        assert [e.subject_id for e in pending if e.type == "lead.created"] == [first["id"], second["id"]]
        pending[0].processed_at = clock.now()
    with app.app_context(), db.unit_of_work() as session:
        assert events_service.pending(session=session, limit=100)[0].id == pending[1].id


def _process_jobs(db):
    with db.unit_of_work() as session:
        jobs = session.scalars(sa.select(ScheduledJob).where(ScheduledJob.kind == "events.process"))
        return [job.payload["event_ids"] for job in jobs]


def test_one_processing_job_per_transaction_names_its_events_but_not_a_rolled_back_savepoints(
    app, tenant, db
):
    jobs_before = len(_process_jobs(db))

    def emit(session, subject_id):
        return events_service.emit(
            session=session,
            event=LeadUpdated(lead_id=subject_id, changed=[]),
            subject=events_service.Subject(tenant.id, "lead", subject_id),
            now=clock.now(),
        )

    with app.app_context(), db.unit_of_work() as session:
        emit(session, 9001)
        with pytest.raises(RuntimeError), session.begin_nested():
            emit(session, 9002)
            raise RuntimeError("the savepoint rolls back")
        with session.begin_nested():
            emit(session, 9003)
        emit(session, 9004)

    [job] = _process_jobs(db)[jobs_before:]
    written = {e.subject_id: e.id for e in events(db) if e.subject_id in (9001, 9002, 9003, 9004)}
    assert sorted(written) == [9001, 9003, 9004]
    assert job == [written[9001], written[9003], written[9004]]
