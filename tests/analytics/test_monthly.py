"""The monthly lead counts written through the app (by the outbox's consumer) equal a recomputation
from the leads, and the reports' cohort counts read from them equal counting the leads themselves."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.domains.analytics import monthly, rollups
from app.domains.analytics.figures import Cohort
from app.domains.analytics.models import CountedLead
from app.domains.leads import service as leads
from app.domains.leads.events import LeadCreated
from app.domains.leads.models import Lead, LeadSource
from app.platform import clock
from app.platform.events import service as events
from app.platform.events.models import DomainEvent
from app.platform.roles import Actor, Role
from app.platform.scheduling import attempts
from app.platform.scheduling import runner as scheduling
from app.platform.scheduling.models import ScheduledJob
from tests.analytics.kit import process_outbox, unprocessed_events
from tests.analytics.test_rollups import log, move
from tests.leadkit import create_lead, get_lead, source_ids
from tests.leads.test_import import EXPO, finished, start_import
from tests.workers import wait_for


def stored(db) -> dict:
    table = monthly.LeadMonth.__table__
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(table)).all()
    return {tuple(r[:6]): tuple(r[6:]) for r in rows if any(r[6:])}  # rows counted down to 0 are empty


def recomputed(db) -> dict:
    with db.engine.connect() as conn:
        return monthly.recomputed(conn)


def test_write_paths_keep_the_monthly_counts_a_recount_gives(app, client, db, tenant):
    coordinator = tenant.users["treatment_coordinator"].id
    a, b, c, d = (create_lead(client, tenant)["id"] for _ in range(4))
    process_outbox(app, db)
    assert stored(db) == recomputed(db) and sum(v[0] for v in stored(db).values()) == 4
    log(client, tenant, a, "PHONE_CALL", "OUTBOUND")  # contacted within 5 minutes
    log(client, tenant, b, "NOTE", None)  # not a contact
    move(client, tenant, a, "contacted")
    move(client, tenant, a, "consultation_completed")
    resp = client.post(f"/api/leads/{b}/lost", json={"reason": "OTHER"}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    resp = client.post(f"/api/leads/{c}/assign", json={"user_id": coordinator}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    resp = client.post(f"/api/leads/{a}/convert", headers=tenant.headers())
    assert resp.status_code in (200, 409), resp.get_json()
    with app.app_context(), db.unit_of_work() as session:
        leads.delete_lead(session=session, actor=admin(tenant), lead_id=d, now=clock.now())
    stages = client.get("/api/pipeline-stages", headers=tenant.headers()).get_json()
    ids = [s["id"] for s in reversed(stages)]
    resp = client.put("/api/pipeline-stages/reorder", json={"stage_ids": ids}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    process_outbox(app, db)
    assert stored(db) == recomputed(db)
    assert sum(v[0] for v in stored(db).values()) == 3  # the deleted lead left


def admin(tenant) -> Actor:
    return Actor(
        clinic_id=tenant.id,
        user_id=tenant.users["clinic_admin"].id,
        role=Role.CLINIC_ADMIN.value,
        permissions=frozenset(),
    )


def test_a_rolled_back_savepoint_leaves_no_counts(app, db, tenant):
    with db.unit_of_work() as session:
        try:
            with session.begin_nested():
                created(session, lead_row(session, tenant, datetime(2025, 3, 3, tzinfo=UTC)))
                raise RuntimeError
        except RuntimeError:
            pass
        created(session, lead_row(session, tenant, datetime(2025, 4, 3, tzinfo=UTC)))
    process_outbox(app, db)
    assert stored(db) == recomputed(db) and sum(v[0] for v in stored(db).values()) == 1


def created(session, lead: Lead) -> None:
    """Add a lead row with its lead.created event (what the counts are fed by)."""
    session.add(lead)
    session.flush()
    events.emit(
        session=session, event=_created(lead), subject=events.Subject.lead(lead), now=lead.created_at,
    )  # fmt: skip


def _created(lead: Lead) -> LeadCreated:
    return LeadCreated(
        lead_id=lead.id, channel="api", source_id=lead.source_id, source_category="OTHER",
        pipeline_stage=lead.pipeline_stage, status=lead.status, assigned_to_id=lead.assigned_to_id,
        has_phone=False, has_email=False, possible_duplicate_ids=[],
    )  # fmt: skip


def lead_row(session, tenant, created: datetime, **fields) -> Lead:
    source = session.scalar(sa.select(sa.func.min(LeadSource.id)).where(LeadSource.clinic_id == tenant.id))
    return Lead(
        clinic_id=tenant.id, status=fields.pop("status", "NEW"), pipeline_stage="new_lead",
        stage_entered_at=created,
        first_name="Jane", last_name="Doe", preferred_contact="PHONE", patient_relationship="SELF",
        source_id=source, treatment_interest=[], created_at=created, updated_at=created,
        created_by="test", updated_by="test", **fields,
    )  # fmt: skip


def test_whole_months_and_partial_ends_count_as_the_leads_do(app, db, tenant):
    """Leads over 14 months; ranges with and without whole months, edges inside months."""
    base = datetime(2025, 1, 1, tzinfo=UTC)
    with db.unit_of_work() as session:
        for i in range(60):
            created = base + timedelta(days=7 * i, hours=i % 24)
            status = ("NEW", "CONVERTED", "LOST")[i % 3]
            session.add(
                lead_row(
                    session, tenant, created, status=status,
                    lost_reason="OTHER" if status == "LOST" else None,
                    first_outbound_contact_at=created + timedelta(minutes=i % 9),
                )
            )  # fmt: skip
    with db.engine.begin() as connection:
        # Rows loaded around the write paths (and their events): their kept spans, then the months.
        rollups.stamp_spans(connection)
        monthly.rebuild(connection)
    ranges = [
        (base, base + timedelta(days=430)),
        (base + timedelta(days=10, hours=3), base + timedelta(days=200, minutes=7)),
        (base + timedelta(days=40), base + timedelta(days=50)),
        (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC)),
    ]
    with db.unit_of_work() as session:
        for start, end in ranges:
            for by in (("reached_stage",), ("coordinator_id",), ("source_id",), ("lost_reason",)):
                got = monthly.cohort_counts(session, Cohort(tenant.id, start, end), by)
                expected = _count_leads(session, tenant.id, start, end, by)
                assert got == expected, (start, end, by)


def _count_leads(session, clinic_id, start, end, by) -> dict:
    """The same figures counted from the leads in Python."""
    out: dict = {}
    for lead in session.scalars(
        sa.select(Lead).where(Lead.clinic_id == clinic_id, Lead.deleted_at.is_(None))
    ):
        if not (start <= lead.created_at < end):
            continue
        values = {
            "coordinator_id": lead.assigned_to_id,
            "source_id": lead.source_id,
            "reached_stage": lead.furthest_stage or lead.pipeline_stage,
            "lost_reason": lead.lost_reason,
        }
        into = out.setdefault(tuple(values[d] for d in by), dict.fromkeys(monthly.COUNTS, 0))
        into["leads"] += 1
        into["converted"] += lead.status == "CONVERTED"
        into["lost"] += lead.status == "LOST"
        into["within_5_min"] += monthly.within_5_min(lead.created_at, lead.first_outbound_contact_at)
    return out


def counted(db) -> dict:
    """The counts summed from where each lead is counted (CountedLead): must equal the months."""
    table = CountedLead.__table__
    out: dict = {}
    with db.engine.connect() as conn:
        for row in conn.execute(sa.select(table).where(table.c.month.is_not(None))):
            key = tuple(row._mapping[k] for k in monthly.KEY)
            into = out.setdefault(key, [0, 0, 0, 0])
            for i, value in enumerate((1, row.converted, row.lost, row.within_5_min)):
                into[i] += value
    return {key: tuple(v) for key, v in out.items()}


def test_the_worker_keeps_the_counts_through_every_kind_of_change(app, client, db, tenant, celery_worker):
    """Captures, contacts, moves, a loss, a reassignment, a conversion, an edit, a deletion, a
    historical import (automation off) and a reorder, processed by the real worker (the
    `celery_worker` fixture, celery.contrib.pytest) as they come: the counts equal a recount."""
    sources = source_ids(client, tenant)
    coordinator = tenant.users["treatment_coordinator"].id
    a, b, c, d, e = (create_lead(client, tenant)["id"] for _ in range(5))
    log(client, tenant, a, "PHONE_CALL", "OUTBOUND")
    log(client, tenant, e, "PHONE_CALL", "OUTBOUND", clock.now() - timedelta(seconds=1))
    move(client, tenant, a, "contacted")
    move(client, tenant, a, "consultation_completed")
    move(client, tenant, b, "contacted")
    resp = client.post(f"/api/leads/{b}/lost", json={"reason": "OTHER"}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    resp = client.post(f"/api/leads/{c}/assign", json={"user_id": coordinator}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    resp = client.post(f"/api/leads/{a}/convert", headers=tenant.headers())
    assert resp.status_code in (200, 409), resp.get_json()
    found = get_lead(client, tenant, e)
    other = next(i for i in sources.values() if i != found.get_json()["source_id"])
    headers = {**tenant.headers(), "If-Match": found.headers["ETag"]}
    resp = client.put(f"/api/leads/{e}", json={"source_id": other}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    with app.app_context(), db.unit_of_work() as session:
        leads.delete_lead(session=session, actor=admin(tenant), lead_id=d, now=clock.now())
    finished(client, tenant, start_import(client, tenant, EXPO[:2], query="?automation=false")["id"])
    stages = client.get("/api/pipeline-stages", headers=tenant.headers()).get_json()
    ids = [s["id"] for s in reversed(stages)]
    resp = client.put("/api/pipeline-stages/reorder", json={"stage_ids": ids}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    wait_for(lambda: unprocessed_events(db) == 0, timeout=30)
    wait_for(lambda: stored(db) == recomputed(db), timeout=30)  # the last recount, due seconds later
    assert counted(db) == stored(db)
    assert sum(v[0] for v in stored(db).values()) == 6  # five captured, one deleted, two imported
    assert sum(v[1] for v in stored(db).values()) == 1 and sum(v[2] for v in stored(db).values()) == 1


def test_an_events_job_run_twice_counts_once(app, client, db, tenant):
    """A redelivered events.process job: the ledger runs it once; and analytics' consumers run again
    over the same events leave the counts as they were."""
    lead = create_lead(client, tenant)["id"]
    log(client, tenant, lead, "PHONE_CALL", "OUTBOUND")
    with db.unit_of_work() as session:
        jobs = list(
            session.scalars(
                sa.select(ScheduledJob).where(ScheduledJob.kind == "events.process").order_by(ScheduledJob.id)
            )
        )
    with app.app_context():
        for job in jobs:
            assert scheduling.run_job(db=db, job_id=job.id, now=clock.now()) == attempts.RAN
            again = scheduling.run_job(db=db, job_id=job.id, now=clock.now())  # delivered again
            assert again != attempts.RAN
    with db.unit_of_work() as session:
        recounts = list(
            session.scalars(sa.select(ScheduledJob).where(ScheduledJob.kind == monthly.RECOUNT_KIND))
        )
    assert recounts  # the counts are a background job's, after the events
    with app.app_context():
        for job in recounts:
            assert scheduling.run_job(db=db, job_id=job.id, now=job.due_at) == attempts.RAN
            assert scheduling.run_job(db=db, job_id=job.id, now=job.due_at) != attempts.RAN  # again
    once = stored(db)
    assert once == recomputed(db) and sum(v[0] for v in once.values()) == 1
    assert sum(v[3] for v in once.values()) == 1  # contacted within 5 minutes, counted once
    # Analytics' consumers run again over the same events (as if the processed mark were lost).
    with db.unit_of_work() as session:
        again = list(session.scalars(sa.select(DomainEvent).order_by(DomainEvent.id)))
        for row in again:
            event = db.events.catalogue.deliver(row)  # as the processing hands it to its consumers
            for consumer in db.events.consumers_of(event.type):
                if consumer.__module__.startswith("app.domains.analytics."):
                    consumer(session=session, event=event, now=clock.now())
        monthly.recount(session=session, lead_ids=[lead])  # the recount's handler, run again
    assert stored(db) == once and counted(db) == once
