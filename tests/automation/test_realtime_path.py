"""A new lead's `events.process` job (the realtime queue, speed to lead) does the follow-up work and
nothing that can wait: no scoring reads (activities, call tallies, score models), no sentiment read
for an activity that is not an inbound reply, no report counts. The re-scoring and the monthly
recount it queues run on the bulk queue, a moment later."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.domains.analytics.models import LeadMonth
from app.platform.app_db import get_db
from app.platform.scheduling import runner
from app.platform.scheduling.models import ScheduledJob
from app.platform.scheduling.runner import run_job
from tests.automation.kit import capture_at, jobs, tasks_of

# What scoring a lead reads; none of it belongs on a new lead's path.
SCORING_TABLES = ("lead_activities", "contact_tallies", "score_models")


def counted_leads(db, tenant) -> int:
    """The clinic's leads as the monthly report counts have them."""
    with db.unit_of_work() as session:
        total = session.scalar(
            sa.select(sa.func.sum(LeadMonth.leads)).where(LeadMonth.clinic_id == tenant.id)
        )
    return total or 0


@contextmanager
def statements(engine):
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_a_new_leads_events_job_reads_nothing_scoring_reads(app, tenant, db):
    now = datetime.now(UTC)
    lead_id = capture_at(app, tenant, now)
    [job] = jobs(app, lead_id, "events.process")
    with app.app_context(), statements(db.engine) as seen:
        assert run_job(db=get_db(), job_id=job.id, now=now + timedelta(seconds=1)) == "done"
    assert [t.title for t in tasks_of(app, lead_id)] == ["Initial contact"]
    reads = [s for s in seen if re.search(rf"FROM ({'|'.join(SCORING_TABLES)})\b", s)]
    assert reads == [], reads
    assert counted_leads(db, tenant) == 0  # the events job counted nothing for the reports
    [rescore] = jobs(app, lead_id, "intelligence.rescore")
    [recount] = jobs(app, lead_id, "analytics.recount")
    assert rescore.queue == recount.queue == "bulk"
    delay = timedelta(seconds=app.config["SETTINGS"].background_delay_seconds)
    assert rescore.due_at == recount.due_at == now + timedelta(seconds=1) + delay
    with app.app_context():
        assert run_job(db=get_db(), job_id=recount.id, now=recount.due_at) == "done"
    assert counted_leads(db, tenant) == 1  # the background recount counted it


def test_the_timers_a_new_lead_starts_run_off_its_path(app, tenant, db):
    """Its SLA clocks' warning and breach (and any task timer) wait on the `timers` queue: when no
    lead is contacted they all come due minutes later, as many as the new leads themselves, and
    the realtime queue is left to new leads (bench/soak)."""
    now = datetime.now(UTC)
    lead_id = capture_at(app, tenant, now)
    [job] = jobs(app, lead_id, "events.process")
    with app.app_context():
        assert run_job(db=get_db(), job_id=job.id, now=now + timedelta(seconds=1)) == "done"
    with db.unit_of_work() as session:
        queue_of = dict(session.execute(sa.select(ScheduledJob.kind, ScheduledJob.queue)).all())
    assert queue_of["sla.warn"] == queue_of["sla.breach"] == "timers"
    assert {kind for kind, queue in queue_of.items() if queue == "realtime"} == {"events.process"}, queue_of


def test_a_background_re_scoring_does_not_make_a_clients_next_put_a_412(app, client, tenant):
    """The score and next best action are the engine's, not the client's: rewriting them after the
    client read the lead leaves its ETag, so the client's edit with If-Match goes through."""
    now = datetime.now(UTC)
    lead_id = capture_at(app, tenant, now)
    [job] = jobs(app, lead_id, "events.process")
    with app.app_context():
        assert run_job(db=get_db(), job_id=job.id, now=now + timedelta(seconds=1)) == "done"
    read = client.get(f"/api/leads/{lead_id}", headers=tenant.headers())
    assert read.get_json()["next_best_action"] is None
    [rescore] = jobs(app, lead_id, "intelligence.rescore")
    with app.app_context():
        assert run_job(db=get_db(), job_id=rescore.id, now=rescore.due_at) == "done"
    again = client.get(f"/api/leads/{lead_id}", headers=tenant.headers())
    assert again.get_json()["next_best_action"] is not None  # the engine rewrote it meanwhile
    headers = {**tenant.headers(), "If-Match": read.headers["ETag"]}
    resp = client.put(f"/api/leads/{lead_id}", json={"notes": "Prefers evenings"}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    stale = client.put(f"/api/leads/{lead_id}", json={"notes": "Mornings"}, headers=headers)
    assert stale.status_code == 412  # a client's own change still moves the ETag


def test_a_drainers_batch_of_new_leads_reads_what_they_share_once(app, tenant, db):
    """The processings a drainer runs together share the clinic's webhook subscriptions and the
    coordinator's notification preferences (none chosen: the defaults): each read once, not a lead."""
    now = datetime.now(UTC)
    lead_ids = [capture_at(app, tenant, now, first_name=f"Batch{n}") for n in range(5)]
    with app.app_context(), statements(db.engine) as seen:
        assert runner.drain(db=get_db(), kind="events.process", clock=lambda: now + timedelta(seconds=1)) == 5
    for lead_id in lead_ids:
        assert [t.title for t in tasks_of(app, lead_id)] == ["Initial contact"]
    for table in ("webhook_subscriptions", "notification_preferences"):
        assert len([s for s in seen if re.search(rf"FROM {table}\b", s)]) == 1, table
