"""The monthly lead counts written through the app equal a recomputation from the leads, and the
reports' cohort counts read from them equal counting the leads themselves."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app import clock
from app.analytics import monthly
from app.auth.roles import Actor, Role
from app.leads import service as leads
from app.leads.models import Lead, LeadSource
from tests.analytics.test_rollups import log, move
from tests.leadkit import create_lead


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
    actor = Actor(
        clinic_id=tenant.id,
        user_id=tenant.users["clinic_admin"].id,
        role=Role.CLINIC_ADMIN.value,
        permissions=frozenset(),
    )
    with app.app_context(), db.unit_of_work() as session:
        leads.delete_lead(session=session, actor=actor, lead_id=d, now=clock.now())
    stages = client.get("/api/pipeline-stages", headers=tenant.headers()).get_json()
    ids = [s["id"] for s in reversed(stages)]
    resp = client.put("/api/pipeline-stages/reorder", json={"stage_ids": ids}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    assert stored(db) == recomputed(db)
    assert sum(v[0] for v in stored(db).values()) == 3  # the deleted lead left


def test_a_rolled_back_savepoint_leaves_no_counts(app, db, tenant):
    with db.unit_of_work() as session:
        try:
            with session.begin_nested():
                session.add(lead_row(session, tenant, datetime(2025, 3, 3, tzinfo=UTC)))
                session.flush()
                raise RuntimeError
        except RuntimeError:
            pass
        session.add(lead_row(session, tenant, datetime(2025, 4, 3, tzinfo=UTC)))
    assert stored(db) == recomputed(db) and sum(v[0] for v in stored(db).values()) == 1


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
    ranges = [
        (base, base + timedelta(days=430)),
        (base + timedelta(days=10, hours=3), base + timedelta(days=200, minutes=7)),
        (base + timedelta(days=40), base + timedelta(days=50)),
        (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC)),
    ]
    with db.unit_of_work() as session:
        for start, end in ranges:
            for by in (("reached_stage",), ("coordinator_id",), ("source_id",), ("lost_reason",)):
                got = monthly.cohort_counts(session, tenant.id, start, end, None, None, by)
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
