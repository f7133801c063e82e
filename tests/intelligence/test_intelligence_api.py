"""Intelligence through the API on a seeded generated history: contact times, score, next best
action, sentiment, forecast, the best-slot call timing, permissions and tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.domains.intelligence import score_rules, scoring, service
from app.domains.intelligence.models import ScoreModelRecord
from app.domains.leads.models import Lead
from app.platform.app_db import get_db
from app.platform.scheduling import runner
from app.platform.scheduling.runner import run_job
from bench.intelligence.history import TIMEZONE
from tests.automation.kit import capture_at, jobs, run_events, tasks_of
from tests.intelligence.kit import NIGHT, configure_clinic, run_night, seed_history
from tests.tasks.taskkit import notifications_of
from tests.workers import thread_worker, wait_for

ZONE = ZoneInfo(TIMEZONE)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


@pytest.fixture
def seeded(app, client, tenant):
    configure_clinic(client, tenant)
    history, ids = seed_history(app, tenant)
    night = run_night(app, tenant)
    return history, ids, night


def open_lead_ids(db, clinic_id: int) -> list[int]:
    with db.unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(Lead.id)
                .where(Lead.clinic_id == clinic_id, Lead.status == "ACTIVE")
                .order_by(Lead.id)
            )
        )


def test_the_nightly_run_trains_the_clinic_model_and_scores_its_open_leads(app, db, tenant, seeded):
    _history, _ids, night = seeded
    assert night["model"].startswith(f"c{tenant.id}-") and night["calls"] > 1000
    assert night["scored"] == len(open_lead_ids(db, tenant.id)) > 10
    with db.unit_of_work() as session:
        record = session.scalar(sa.select(ScoreModelRecord).where(ScoreModelRecord.clinic_id == tenant.id))
        assert record.version == night["model"] and record.samples >= scoring.MIN_HISTORY_LEADS
        assert 0 < record.conversions < record.samples


def test_best_contact_times_are_the_planted_hours(client, db, tenant, seeded):
    lead_id = open_lead_ids(db, tenant.id)[0]
    resp = client.get(f"/api/leads/{lead_id}/best-contact-times", headers=tenant.headers("front_desk"))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["timezone"] == TIMEZONE and body["calls"] > 1000 and len(body["slots"]) == 3
    planted = [s for s in body["slots"] if s["local_day"] in WEEKDAYS and s["local_hour"] in (12, 17)]
    assert len(planted) >= 2, body["slots"]
    rates = [s["rate"] for s in body["slots"]]
    assert rates == sorted(rates, reverse=True) and all(s["calls"] > 0 for s in body["slots"])
    for slot in body["slots"]:
        local = datetime.fromisoformat(slot["starts_at"]).astimezone(ZONE)
        assert 8 <= local.hour < 19 and local.weekday() < 5  # inside the clinic's business hours


def test_lead_endpoints_are_tenant_isolated_and_permission_checked(client, db, tenant, make_tenant, seeded):
    lead_id = open_lead_ids(db, tenant.id)[0]
    other = make_tenant("Other Clinic")
    resp = client.get(f"/api/leads/{lead_id}/best-contact-times", headers=other.headers())
    assert resp.status_code == 404
    assert client.get(f"/api/leads/{lead_id}/best-contact-times").status_code == 401
    assert client.get(f"/api/leads/{lead_id}", headers=other.headers()).status_code == 404
    key = client.post(
        "/api/api-keys",
        json={"name": "intake only", "permissions": ["lead:create"]},
        headers=tenant.headers(),
    ).get_json()
    resp = client.get(f"/api/leads/{lead_id}/best-contact-times", headers={"X-API-Key": key["key"]})
    assert resp.status_code == 403
    assert client.get("/api/leads/99999999/best-contact-times", headers=tenant.headers()).status_code == 404


def test_the_lead_shows_its_score_top_three_factors_and_next_action(client, db, tenant, seeded):
    lead_id = open_lead_ids(db, tenant.id)[0]
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    assert 0 < lead["score"] < 1 and lead["score_model_version"].startswith(f"c{tenant.id}-")
    assert len(lead["score_factors"]) == 3
    assert {f["effect"] for f in lead["score_factors"]} <= {"raises", "lowers"}
    assert lead["next_best_action"]["action"] in (
        "call_now",
        "call_at_best_slot",
        "send_breakup_email",
        "move_to_lost",
        "schedule_consultation",
        "enroll_sequence",
    )
    assert lead["next_best_action"]["reason"]


def test_the_clinic_model_learnt_the_planted_effects_from_the_database(app, db, tenant, seeded):
    """Two leads alike but for their source: the model trained on the clinic's rows tells them apart.
    (The weaker fast-response effect needs more than these 430 leads: test_planted_truths checks it.)"""
    with app.app_context(), db.unit_of_work() as session:
        model = scoring.model_for(session=session, clinic_id=tenant.id)
    base = score_rules.LeadFacts("WEB_PAID", ("INVISALIGN",), "teen", 5.0, 1, 1)
    referral = score_rules.LeadFacts("PATIENT_REFERRAL", *list(base.__dict__.values())[1:])
    p = score_rules.score(model, base).probability
    assert score_rules.score(model, referral).probability > 1.5 * p


def test_lists_sort_by_score_with_unscored_leads_last(app, client, tenant, seeded):
    unscored = client.post(
        "/api/leads", json={"first_name": "New", "last_name": "Lead"}, headers=tenant.headers("front_desk")
    ).get_json()["id"]  # its events are not processed: no score yet
    for sort in ("-score", "score"):
        resp = client.get(f"/api/leads?status=ACTIVE&sort={sort}&page_size=100", headers=tenant.headers())
        assert resp.status_code == 200, resp.get_json()
        scores = [lead["score"] for lead in resp.get_json()]
        assert None not in scores  # the unscored lead is on the last page, not the first
        assert scores == sorted(scores, reverse=sort.startswith("-"))
    last = client.get("/api/leads?sort=-score&page_size=100&status=NEW", headers=tenant.headers()).get_json()
    assert [lead["id"] for lead in last] == [unscored] and last[0]["score"] is None
    assert client.get("/api/leads?sort=-scores", headers=tenant.headers()).status_code == 422


def test_a_clinic_without_history_is_scored_by_the_global_prior(app, client, db, make_tenant, tenant, seeded):
    small = make_tenant("New Clinic")
    with app.app_context(), db.unit_of_work() as session:
        version = service.train_global(session=session, now=NIGHT)
    assert version.startswith("global-")
    lead_id = capture_at(app, small, NIGHT)
    run_events(app, lead_id, NIGHT + timedelta(seconds=1))
    lead = client.get(f"/api/leads/{lead_id}", headers=small.headers()).get_json()
    assert lead["score_model_version"] == version and 0 < lead["score"] < 1
    with app.app_context(), db.unit_of_work() as session:  # too little history for its own model
        assert scoring.train(session=session, clinic_id=small.id, now=NIGHT) is None


SCORE_RULE = {
    "name": "Promising lead: tell the owner",
    "trigger": "lead.score_changed",
    "conditions": [{"field": "lead.score", "operator": "greater_than", "value": 0.0}],
    "actions": [{"type": "notify", "lead_owner": True, "title": "Score now {{ first_name }}"}],
}


def test_score_changes_are_events_a_rule_can_trigger_on(app, client, tenant, seeded):
    resp = client.post("/api/follow-up-rules", json=SCORE_RULE, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    lead_id = capture_at(app, tenant, NIGHT + timedelta(hours=3))
    run_events(app, lead_id, NIGHT + timedelta(hours=3, seconds=1))  # lead.created: scored
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    assert lead["score"] is not None and lead["assigned_to_id"]
    # The re-scoring ran when due (settings.background_delay_seconds after the events): after it,
    later = NIGHT + timedelta(hours=3, seconds=2 + app.config["SETTINGS"].background_delay_seconds)
    assert run_events(app, lead_id, later) >= 1  # lead.score_changed
    titles = [n.title for n in notifications_of(app, lead["assigned_to_id"])]
    assert "Score now Jane" in titles


def log(client, tenant, lead_id, **body):
    resp = client.post(
        f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def activities(client, tenant, lead_id):
    return client.get(f"/api/leads/{lead_id}/activities", headers=tenant.headers()).get_json()


def test_a_negative_reply_is_labelled_notifies_the_owner_and_is_a_rule_condition(app, client, tenant):
    rule = {
        "name": "Unhappy reply: call back",
        "trigger": "activity.logged",
        "conditions": [{"field": "reply_sentiment", "operator": "equals", "value": "negative"}],
        "actions": [{"type": "create_task", "title": "Call back the unhappy lead", "task_type": "CALL"}],
    }
    assert client.post("/api/follow-up-rules", json=rule, headers=tenant.headers()).status_code == 201
    now = datetime.now(UTC)
    lead_id = capture_at(app, tenant, now)
    run_events(app, lead_id, now)
    owner = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()["assigned_to_id"]
    log(
        client,
        tenant,
        lead_id,
        type="SMS",
        direction="INBOUND",
        notes="Way too expensive. Not interested, stop texting me.",
    )
    log(
        client,
        tenant,
        lead_id,
        type="EMAIL",
        direction="INBOUND",
        notes="Thank you so much, we would love to come in!",
    )
    log(
        client,
        tenant,
        lead_id,
        type="SMS",
        direction="INBOUND",
        notes="Hola, quiero una cita para mi hijo el martes por la tarde",
    )
    log(client, tenant, lead_id, type="NOTE", notes="Terrible awful horrible note")  # not a reply
    run_events(app, lead_id, now + timedelta(seconds=5))
    labels = {
        a["notes"][:4]: a["sentiment"]
        for a in activities(client, tenant, lead_id)
        if a["type"] != "STAGE_CHANGE"
    }
    assert labels["Way "] == "negative" and labels["Than"] == "positive" and labels["Hola"] == "unknown"
    assert labels["Terr"] is None
    assert len(notifications_of(app, owner, kind="negative_reply")) == 1
    assert [t.title for t in tasks_of(app, lead_id)].count("Call back the unhappy lead") == 1


def test_best_slot_timing_moves_the_initial_call_to_the_best_hour(app, client, tenant, seeded):
    monday_9 = datetime(2026, 7, 6, 9, 0, tzinfo=ZONE)
    first = capture_at(app, tenant, monday_9.astimezone(UTC), email="first@example.com")
    run_events(app, first, monday_9.astimezone(UTC) + timedelta(seconds=1))
    [task] = [t for t in tasks_of(app, first) if t.title == "Initial contact"]
    assert task.due_at.astimezone(ZONE) == monday_9 + timedelta(minutes=5)  # the default: first slot

    configure_clinic(client, tenant, call_timing="best_slot", best_slot_window_hours=24)
    second = capture_at(app, tenant, monday_9.astimezone(UTC), email="second@example.com")
    run_events(app, second, monday_9.astimezone(UTC) + timedelta(seconds=1))
    [task] = [t for t in tasks_of(app, second) if t.title == "Initial contact"]
    due = task.due_at.astimezone(ZONE)
    assert due.date() == monday_9.date() and due.hour in (12, 17) and due.minute == 0


def test_clinic_call_timing_settings_are_validated(client, tenant):
    for settings, field in [
        ({"call_timing": "whenever"}, "call_timing"),
        ({"best_slot_window_hours": 0}, "best_slot_window_hours"),
    ]:
        resp = client.put("/api/clinic", json={"settings": settings}, headers=tenant.headers())
        assert resp.status_code == 422 and field in str(resp.get_json()["errors"])


def test_my_tasks_carry_the_leads_next_best_action(app, client, tenant):
    now = datetime.now(UTC)
    lead_id = capture_at(app, tenant, now)
    run_events(app, lead_id, now + timedelta(seconds=1))
    owner_role = next(
        role
        for role, user in tenant.users.items()
        if user.id
        == client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()["assigned_to_id"]
    )
    resp = client.get("/api/leads/tasks/my-tasks", headers=tenant.headers(owner_role))
    assert resp.status_code == 200, resp.get_json()
    [task] = [t for t in resp.get_json() if t["lead_id"] == lead_id]
    assert task["lead_next_best_action"]["action"] == "call_now"  # a fresh lead: the first hour counts


def test_the_forecast_answers_three_months_for_analytics_roles_only(client, tenant, seeded):
    resp = client.get("/api/leads/analytics/forecast", headers=tenant.headers("doctor"))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["history_leads"] == 500 and len(body["months"]) == 3
    today = datetime.now(UTC).date()
    assert body["months"][0]["month"] == f"{today.year:04d}-{today.month:02d}"
    for month in body["months"]:
        assert month["expected_conversions"] == pytest.approx(
            month["from_pipeline"] + month["from_new_leads"], abs=0.02
        )
        assert month["expected_conversions"] > 0
    assert (
        client.get("/api/leads/analytics/forecast", headers=tenant.headers("front_desk")).status_code == 403
    )
    six = client.get("/api/leads/analytics/forecast?months=6", headers=tenant.headers()).get_json()
    assert len(six["months"]) == 6
    for bad in ("0", "7", "abc", "1e9"):
        resp = client.get(f"/api/leads/analytics/forecast?months={bad}", headers=tenant.headers())
        assert resp.status_code == 422 and "months" in str(resp.get_json()["errors"])


def test_the_nightly_task_runs_on_a_real_worker(app, client, db, tenant, seeded):
    """Beat's `intelligence.nightly` on an in-process thread worker (celery.contrib.testing)."""
    with db.unit_of_work() as session:
        before = session.scalar(sa.select(sa.func.count()).select_from(ScoreModelRecord))
    with thread_worker(app) as celery:
        celery.send_task("intelligence.nightly", queue="bulk")
        wait_for(
            lambda: _model_count(db) >= before + 2,  # the global prior and the clinic's own
            timeout=120,
        )


def _model_count(db) -> int:
    with db.unit_of_work() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(ScoreModelRecord))


def test_a_new_leads_events_job_does_not_score_it_a_background_job_does(app, client, db, tenant, seeded):
    """Scoring is off a new lead's path: its `events.process` job (realtime) makes the call task and
    queues one `intelligence.rescore` job on the bulk queue, which scores the lead."""
    lead_id = capture_at(app, tenant, NIGHT + timedelta(hours=3))
    with app.app_context():
        [events_job] = jobs(app, lead_id, "events.process")
        assert run_job(db=get_db(), job_id=events_job.id, now=NIGHT + timedelta(hours=3, seconds=1)) == "done"
    assert [t.title for t in tasks_of(app, lead_id)] == ["Initial contact"]
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    assert lead["score"] is None and lead["next_best_action"] is None
    [rescore] = jobs(app, lead_id, "intelligence.rescore")
    assert rescore.queue == "bulk" and rescore.payload == {"lead_ids": [lead_id]}
    with app.app_context():
        assert run_job(db=get_db(), job_id=rescore.id, now=rescore.due_at) == "done"
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    assert 0 < lead["score"] < 1 and lead["next_best_action"]["action"]


def test_a_drainer_scores_a_batch_of_leads_in_one_pass(app, client, db, tenant, seeded):
    """The re-scoring jobs of many new leads, drained together: every lead scored, and their
    activities read once for the whole batch (not once a lead)."""
    when = NIGHT + timedelta(hours=3)
    lead_ids = [capture_at(app, tenant, when, first_name=f"Batch{n}") for n in range(6)]
    with app.app_context():
        for lead_id in lead_ids:
            [events_job] = jobs(app, lead_id, "events.process")
            assert run_job(db=get_db(), job_id=events_job.id, now=when + timedelta(seconds=1)) == "done"
    reads = []

    def count_reads(conn, cursor, statement, *args):
        if "FROM lead_activities" in statement:
            reads.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count_reads)
    try:
        with app.app_context():
            due = when + timedelta(seconds=1 + app.config["SETTINGS"].background_delay_seconds)
            ran = runner.drain(db=get_db(), kind=service.RESCORE_KIND, clock=lambda: due)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count_reads)
    assert ran == len(lead_ids)
    assert len(reads) == 1  # one pass: the batch's leads' activities in one query
    for lead_id in lead_ids:
        lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
        assert 0 < lead["score"] < 1 and lead["next_best_action"]["action"]


def test_a_lead_captured_through_the_api_is_scored_by_a_real_worker(app, client, db, tenant, seeded):
    with thread_worker(app):
        resp = client.post(
            "/api/leads",
            json={"first_name": "Ann", "last_name": "Lee", "phone": "(415) 555-2671"},
            headers=tenant.headers(),
        )
        assert resp.status_code == 201, resp.get_json()
        lead_id = resp.get_json()["id"]

        def scored():
            lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
            return lead["score"] is not None and lead["next_best_action"] is not None

        wait_for(scored, timeout=60)
    assert [t.title for t in tasks_of(app, lead_id)] == ["Initial contact"]
    assert jobs(app, lead_id, "intelligence.rescore", statuses=("done",))
