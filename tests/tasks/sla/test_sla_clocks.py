"""SLA clocks through the API and the ledger, the clock passed in: a warning then met, a warning then
a breach, a lost lead's clocks cancelled."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.platform import clock
from app.platform.scheduling import sweeps
from app.platform.scheduling.models import ScheduledJob
from tests.automation.kit import capture_at, open_all_day, run_events
from tests.ledger import queued, queued_job_ids
from tests.tasks.taskkit import notifications_of, run_at

SLA = {"speed_to_lead_minutes": 30, "first_response_minutes": 60, "warning_share": 0.8}


def _setup(client, tenant) -> None:
    open_all_day(client, tenant, clock.now())
    resp = client.put("/api/clinic", json={"settings": {"sla": SLA}}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()


def _clocks(client, tenant, lead_id) -> dict:
    resp = client.get(f"/api/leads/{lead_id}/sla", headers=tenant.headers("front_desk"))
    assert resp.status_code == 200, resp.get_json()
    return {c["kind"]: c for c in resp.get_json()}


def _job(app, clock_id: int, kind: str) -> ScheduledJob:
    with app.extensions["followup.db"].unit_of_work() as session:
        return session.scalar(
            sa.select(ScheduledJob).where(
                ScheduledJob.subject_type == "sla_clock",
                ScheduledJob.subject_id == clock_id,
                ScheduledJob.kind == kind,
            )
        )


def _log_call(client, tenant, lead_id, outcome="no_answer") -> None:
    body = {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": outcome, "duration_minutes": 1}
    resp = client.post(
        f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert resp.status_code == 201, resp.get_json()


def _captured_minutes_ago(app, client, tenant, minutes: int) -> tuple[int, object]:
    captured = clock.now() - timedelta(minutes=minutes)
    lead_id = capture_at(app, tenant, captured)
    run_events(app, lead_id, captured + timedelta(seconds=1))
    return lead_id, captured


def test_an_sla_warns_the_owner_then_is_met(app, client, tenant):
    _setup(client, tenant)
    lead_id, captured = _captured_minutes_ago(app, client, tenant, 25)
    clocks = _clocks(client, tenant, lead_id)
    speed = clocks["speed_to_lead"]
    assert {c["status"] for c in clocks.values()} == {"pending"}
    assert speed["warn_at"] == (captured + timedelta(minutes=24)).isoformat()
    assert speed["due_at"] == (captured + timedelta(minutes=30)).isoformat()

    warn = _job(app, speed["id"], "sla.warn")
    assert run_at(app, warn, warn.due_at) == "done"
    assert _clocks(client, tenant, lead_id)["speed_to_lead"]["status"] == "warning"
    owner = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()["assigned_to_id"]
    [told] = notifications_of(app, owner, "sla_warning")
    assert "Speed to lead due soon" in told.title

    _log_call(client, tenant, lead_id)  # a person's attempt: speed to lead, not yet first response
    run_events(app, lead_id, clock.now())
    clocks = _clocks(client, tenant, lead_id)
    assert (
        clocks["speed_to_lead"]["status"] == "met" and clocks["speed_to_lead"]["settled_reason"] == "attempt"
    )
    assert clocks["first_response"]["status"] == "pending"
    breach = _job(app, speed["id"], "sla.breach")
    assert breach.status == "cancelled"
    admin = tenant.users["clinic_admin"].id
    assert notifications_of(app, admin, "escalation") == []
    trail = client.get(f"/api/audit-events?subject=lead:{lead_id}", headers=tenant.headers())
    actions = [row["action"] for row in trail.get_json()]
    assert "sla.warning" in actions and "sla.met" in actions
    why = client.get(f"/api/leads/{lead_id}/automation", headers=tenant.headers()).get_json()
    shown = {c["kind"]: c for c in why["sla"]}
    assert shown["speed_to_lead"]["warned_at"] == warn.due_at.isoformat()


def test_an_sla_warns_then_breaches_and_the_admins_are_told(app, client, tenant):
    _setup(client, tenant)
    lead_id, captured = _captured_minutes_ago(app, client, tenant, 5)
    first = _clocks(client, tenant, lead_id)["first_response"]
    warn, breach = _job(app, first["id"], "sla.warn"), _job(app, first["id"], "sla.breach")
    assert warn.due_at == captured + timedelta(minutes=48) and breach.due_at == captured + timedelta(
        minutes=60
    )
    assert run_at(app, warn, warn.due_at) == "done"
    _log_call(client, tenant, lead_id, "voicemail")  # an attempt is not a contact
    run_events(app, lead_id, clock.now())
    assert _clocks(client, tenant, lead_id)["first_response"]["status"] == "warning"
    assert run_at(app, breach, breach.due_at) == "done"
    breached = _clocks(client, tenant, lead_id)["first_response"]
    assert breached["status"] == "breached" and breached["breached_at"] == breach.due_at.isoformat()
    [told] = notifications_of(app, tenant.users["clinic_admin"].id, "escalation")
    assert "First response missed" in told.title
    assert run_at(app, breach, breach.due_at) != "done"  # redelivered: nobody is told twice
    assert len(notifications_of(app, tenant.users["clinic_admin"].id, "escalation")) == 1


def test_a_lost_lead_cancels_its_slas_and_another_clinic_sees_nothing(app, client, tenant, make_tenant):
    _setup(client, tenant)
    lead_id, _ = _captured_minutes_ago(app, client, tenant, 1)
    resp = client.post(f"/api/leads/{lead_id}/lost", json={"reason": "NO_RESPONSE"}, headers=tenant.headers())
    assert resp.status_code == 200
    run_events(app, lead_id, clock.now())
    clocks = _clocks(client, tenant, lead_id)
    assert {(c["status"], c["settled_reason"]) for c in clocks.values()} == {("cancelled", "lost")}
    warn = _job(app, clocks["speed_to_lead"]["id"], "sla.warn")
    assert warn.status == "cancelled"
    other = make_tenant("Other Clinic")
    assert client.get(f"/api/leads/{lead_id}/sla", headers=other.headers()).status_code == 404


def test_bad_sla_settings_are_422_naming_the_field(client, tenant):
    resp = client.put(
        "/api/clinic", json={"settings": {"sla": {"warning_share": 2}}}, headers=tenant.headers()
    )
    assert resp.status_code == 422 and "warning_share" in str(resp.get_json()["errors"])


def test_speed_to_lead_splits_routing_from_human_time_by_coordinator_and_source(app, client, tenant):
    _setup(client, tenant)
    lead_id, captured = _captured_minutes_ago(app, client, tenant, 30)  # its first task: 1 s after capture
    _log_call(client, tenant, lead_id, "spoke")  # an attempt and a contact
    run_events(app, lead_id, clock.now())  # the reports read the firsts the events keep on the lead
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    report = client.get("/api/leads/analytics/speed-to-lead", headers=tenant.headers()).get_json()
    [mine] = [r for r in report["split"]["by_coordinator"] if r["coordinator_id"] == lead["assigned_to_id"]]
    assert mine["leads"] == 1 and mine["routing_median_minutes"] == round(1 / 60, 2)
    human = clock.now() - (captured + timedelta(seconds=1))
    assert abs(mine["human_to_first_attempt_median_minutes"] - human.total_seconds() / 60) < 0.5
    assert mine["human_to_first_contact_median_minutes"] == mine["human_to_first_attempt_median_minutes"]
    [by_source] = report["split"]["by_source"]
    assert by_source["source_id"] == lead["source_id"] and by_source["leads"] == 1


def test_warnings_and_breaches_reach_the_broker_once_due_many_to_a_message(app, client, tenant, redis):
    """Two clocks' warnings and breaches for every new lead, due minutes later: none waits in the
    broker (a worker would hold each in memory until its time); the promote sweep publishes them
    once due, those due together in one message of their kind."""
    open_all_day(client, tenant, clock.now())
    body = {"settings": {"sla": {"speed_to_lead_minutes": 5, "first_response_minutes": 8}}}
    assert client.put("/api/clinic", json=body, headers=tenant.headers()).status_code == 200
    leads = [_captured_minutes_ago(app, client, tenant, 0)[0] for _ in range(3)]
    clock_ids = [c["id"] for lead_id in leads for c in _clocks(client, tenant, lead_id).values()]
    rows = [_job(app, clock_id, kind) for clock_id in clock_ids for kind in ("sla.warn", "sla.breach")]
    assert len(rows) == 12 and {row.status for row in rows} == {"pending"}
    ids = {row.id for row in rows}
    assert not ids & set(queued_job_ids(redis, "timers"))

    db = app.extensions["followup.db"]
    assert sweeps.promote_due(db=db, now=clock.now()) == 0
    all_due = max(row.due_at for row in rows) + timedelta(seconds=1)
    assert sweeps.promote_due(db=db, now=all_due) == 12
    messages = [m for m in queued(redis, "timers") if ids & {m["job_id"], *m["batch"]}]
    assert set(queued_job_ids(redis, "timers")) >= ids
    assert len(messages) == 2 and all(m["eta"] is None for m in messages)  # one per kind, none ahead
