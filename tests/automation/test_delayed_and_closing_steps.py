"""Delayed follow-up steps and the rules of a close, end to end: the API, a real worker on Redis for
what happens now, and the ledger's later jobs run at chosen times (never by sleeping for days)."""

from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa

from app.domains.pipeline import staleness
from app.platform import clock
from app.platform.app_db import get_db
from app.platform.events.models import DomainEvent
from app.platform.scheduling import sweeps
from tests.automation.kit import jobs, open_all_day, run_due_steps, run_events, steps_of, tasks_of
from tests.automation.outreachkit import process_events
from tests.consultations.kit import attend, events_done
from tests.tasks.taskkit import lead_for, notifications_of, run_at
from tests.workers import thread_worker, wait_for

FOLLOW_UP = "Follow up after the consultation"
CHECK_IN = "Check in on the treatment decision"
KICKOFF = "Treatment kickoff"
RE_ENGAGE = "Re-engagement call"


def processed(app, lead_id: int) -> bool:
    """The lead's events were all handed to their consumers (by the worker)."""
    return jobs(app, lead_id, "events.process") == []


def post(client, tenant, path: str, body: dict | None = None) -> dict:
    resp = client.post(path, json=body or {}, headers=tenant.headers("treatment_coordinator"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def titled(app, lead_id: int, title: str):
    return [t for t in tasks_of(app, lead_id) if t.title == title]


def test_the_consultation_follow_up_is_a_step_three_business_days_out_made_when_it_fires(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    with thread_worker(app):
        attended = attend(client, tenant, lead["id"])
        wait_for(
            lambda: processed(app, lead["id"]) and events_done(app.extensions["followup.db"]), timeout=60
        )
    assert titled(app, lead["id"], FOLLOW_UP) == []  # nothing yet: the step waits in the ledger
    [step] = [s for s in steps_of(app, lead["id"]) if s.action.get("title") == FOLLOW_UP]
    assert step.status == "scheduled"
    [job] = [j for j in jobs(app, lead["id"], "automation.step") if j.payload["step_id"] == step.id]
    entered = datetime.fromisoformat(attended["checked_in_at"])
    # Open every day of the week: three business days are three days.
    assert abs(job.due_at - (entered + timedelta(days=3))) < timedelta(seconds=1)

    assert run_due_steps(app, lead["id"], entered + timedelta(days=2)) == 0
    assert run_due_steps(app, lead["id"], job.due_at) == 1
    [task] = titled(app, lead["id"], FOLLOW_UP)
    assert task.due_at == job.due_at and task.assigned_to_id == lead["assigned_to_id"]
    told = notifications_of(app, lead["assigned_to_id"], "new_task")
    assert [n.title for n in told] == [f"New task: {FOLLOW_UP}"]


def test_the_consultation_follow_up_waits_for_business_days(app, client, tenant):
    weekdays = {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    resp = client.put(
        "/api/clinic",
        json={"timezone": "UTC", "business_hours": weekdays, "holiday_country": None},
        headers=tenant.headers(),
    )
    assert resp.status_code == 200, resp.get_json()
    lead = lead_for(client, tenant)
    attended = attend(client, tenant, lead["id"])
    # The event is processed as if the family checked in on a Friday at noon: a Friday to come, so
    # that its follow-up is still ahead of the clock whatever day the test runs.
    today = clock.now().date()
    friday = today + timedelta(days=(4 - today.weekday()) % 7 or 7)
    friday_noon = datetime.combine(friday, time(12), tzinfo=UTC)
    with app.extensions["followup.db"].unit_of_work() as session:
        session.execute(
            sa.update(DomainEvent)
            .where(DomainEvent.subject_id == attended["id"], DomainEvent.type == "consultation.attended")
            .values(occurred_at=friday_noon)
        )
    process_events(app, app.extensions["followup.db"], clock.now())
    [job] = [
        j for j in jobs(app, lead["id"], "automation.step") if j.due_at > clock.now() + timedelta(days=1)
    ]
    assert job.due_at == friday_noon + timedelta(days=5)  # the Wednesday after, not Monday


def test_a_lead_converted_two_days_after_its_consultation_never_gets_the_three_day_task(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    with thread_worker(app):
        attended = attend(client, tenant, lead["id"])
        wait_for(
            lambda: processed(app, lead["id"]) and events_done(app.extensions["followup.db"]), timeout=60
        )
        [job] = jobs(app, lead["id"], "automation.step")
        post(client, tenant, f"/api/leads/{lead['id']}/convert")
        wait_for(lambda: processed(app, lead["id"]), timeout=60)
    entered = datetime.fromisoformat(attended["checked_in_at"])
    assert run_at(app, job, entered + timedelta(days=3, minutes=1)) != "done"  # cancelled: it never runs
    assert run_due_steps(app, lead["id"], entered + timedelta(days=30)) == 0
    assert titled(app, lead["id"], FOLLOW_UP) == []
    [step] = [s for s in steps_of(app, lead["id"]) if s.action.get("title") == FOLLOW_UP]
    assert step.status == "cancelled" and step.result["reason"] == "the lead converted"
    trail = client.get(f"/api/leads/{lead['id']}/automation", headers=tenant.headers()).get_json()
    assert trail["pending"] == []


def test_the_consultation_follow_up_is_not_made_when_the_lead_was_contacted_since(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    attend(client, tenant, lead["id"])
    process_events(app, app.extensions["followup.db"], clock.now())
    reply = client.post(
        f"/api/leads/{lead['id']}/activities",
        json={"type": "PHONE_CALL", "direction": "INBOUND", "duration_minutes": 5},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert reply.status_code == 201, reply.get_json()
    [job] = jobs(app, lead["id"], "automation.step")
    assert run_due_steps(app, lead["id"], job.due_at) == 1
    assert titled(app, lead["id"], FOLLOW_UP) == []
    [step] = [s for s in steps_of(app, lead["id"]) if s.action.get("title") == FOLLOW_UP]
    assert step.status == "skipped" and step.result["reason"] == "the lead has been contacted since"


def test_a_converted_lead_gets_a_kickoff_task_for_its_coordinator(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    with thread_worker(app):
        wait_for(lambda: processed(app, lead["id"]), timeout=60)
        post(client, tenant, f"/api/leads/{lead['id']}/convert")
        wait_for(lambda: titled(app, lead["id"], KICKOFF), timeout=60)
        wait_for(lambda: processed(app, lead["id"]), timeout=60)
    [kickoff] = titled(app, lead["id"], KICKOFF)
    assert kickoff.status == "PENDING" and kickoff.assigned_to_id == lead["assigned_to_id"]
    assert kickoff.origin["event_id"] is not None
    # The conversion cancelled the lead's other open tasks (the initial call), not its own kickoff.
    [initial] = titled(app, lead["id"], "Initial contact")
    assert initial.status == "CANCELLED"
    shown = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert shown["status"] == "CONVERTED"


def test_a_lead_lost_for_price_gets_a_re_engagement_task_thirty_days_later(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    with thread_worker(app):
        lost = post(client, tenant, f"/api/leads/{lead['id']}/lost", {"reason": "COST_FINANCIAL"})
        wait_for(lambda: processed(app, lead["id"]), timeout=60)
    lost_at = datetime.fromisoformat(lost["lost_at"])
    assert titled(app, lead["id"], RE_ENGAGE) == []
    assert run_due_steps(app, lead["id"], lost_at + timedelta(days=29)) == 0
    assert run_due_steps(app, lead["id"], lost_at + timedelta(days=30, seconds=1)) == 1
    [task] = titled(app, lead["id"], RE_ENGAGE)
    assert task.status == "PENDING" and task.type == "CALL"
    assert task.assigned_to_id == lead["assigned_to_id"]
    assert abs(task.due_at - (lost_at + timedelta(days=30))) < timedelta(seconds=1)
    shown = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert shown["status"] == "LOST" and shown["pipeline_stage"] == "lost"  # it reopens nothing
    told = notifications_of(app, lead["assigned_to_id"], "new_task")
    assert f"New task: {RE_ENGAGE}" in [n.title for n in told]


def test_a_lead_lost_to_a_competitor_gets_no_re_engagement(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    lost = post(client, tenant, f"/api/leads/{lead['id']}/lost", {"reason": "CHOSE_COMPETITOR"})
    run_events(app, lead["id"], clock.now())
    assert run_due_steps(app, lead["id"], datetime.fromisoformat(lost["lost_at"]) + timedelta(days=31)) == 0
    assert titled(app, lead["id"], RE_ENGAGE) == []


def test_closing_a_lead_cancels_its_other_pending_steps_but_not_its_own(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    post(
        client,
        tenant,
        f"/api/leads/{lead['id']}/stage",
        {"stage": "pending_decision", "hesitation_reason": "cost"},
    )
    run_events(app, lead["id"], clock.now())
    post(client, tenant, f"/api/leads/{lead['id']}/lost", {"reason": "TIMING_NOT_RIGHT"})
    run_events(app, lead["id"], clock.now())
    tasks = ("create_task", "recurring_follow_up")  # the check-in is a weekly follow-up (issue 60)
    by_title = {s.action.get("title"): s for s in steps_of(app, lead["id"]) if s.action_type in tasks}
    assert by_title[CHECK_IN].status == "cancelled"
    assert by_title[CHECK_IN].result["reason"] == "the lead was lost"
    assert by_title[RE_ENGAGE].status == "scheduled"


def test_a_lead_pending_a_decision_for_thirty_days_with_daily_purges_gets_one_check_in_a_week(
    app, client, tenant
):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    with thread_worker(app):
        moved = post(
            client,
            tenant,
            f"/api/leads/{lead['id']}/stage",
            {"stage": "pending_decision", "hesitation_reason": "cost"},
        )
        wait_for(lambda: processed(app, lead["id"]), timeout=60)
    entered = datetime.fromisoformat(moved["stage_entered_at"])
    keep_days = app.config["SETTINGS"].purge_done_after_days
    for day in range(1, 31):
        today = entered + timedelta(days=day, minutes=1)
        with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
            staleness.find_stale_leads(session=session, now=today)
        run_due_steps(app, lead["id"], today)
        run_events(app, lead["id"], today)
        with app.app_context():  # every finished ledger row is gone, whatever its age
            sweeps.purge_done(db=get_db(), now=today + timedelta(days=keep_days + 1))
    # The weekly follow-up (issue 60): days 7, 14, 21 and 28, each once whatever the purges took.
    check_ins = titled(app, lead["id"], CHECK_IN)
    assert len(check_ins) == 4
    for week, check_in in enumerate(check_ins, start=1):
        assert abs(check_in.due_at - (entered + timedelta(days=7 * week))) < timedelta(minutes=1)
    with app.extensions["followup.db"].unit_of_work() as session:
        stale_events = session.scalars(
            sa.select(DomainEvent).where(
                DomainEvent.subject_id == lead["id"], DomainEvent.type == "lead.stale"
            )
        ).all()
    assert [e.payload["stage"] for e in stale_events if e.payload.get("kind") == "stage"] == [
        "pending_decision"
    ]


def test_a_check_in_step_of_an_earlier_stay_does_nothing(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    post(
        client,
        tenant,
        f"/api/leads/{lead['id']}/stage",
        {"stage": "pending_decision", "hesitation_reason": "cost"},
    )
    run_events(app, lead["id"], clock.now())
    [first] = jobs(app, lead["id"], "automation.step")
    # Another stay in pending_decision begins later (the stage is left and entered again).
    with app.extensions["followup.db"].unit_of_work() as session:
        from app.domains.leads.models import Lead

        session.execute(
            sa.update(Lead)
            .where(Lead.id == lead["id"])
            .values(stage_entered_at=clock.now() + timedelta(days=1))
        )
    assert run_at(app, first, first.due_at) == "done"
    assert titled(app, lead["id"], CHECK_IN) == []
    [step] = [s for s in steps_of(app, lead["id"]) if s.action.get("title") == CHECK_IN]
    assert step.status == "skipped" and "came back" in step.result["reason"]
