"""The stale-lead sweep flags leads in chunks (a transaction, and one events processing job, each)
shared out across clinics: a clinic with a backlog neither makes one giant transaction nor keeps the
other clinics' leads waiting behind its own."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.domains.leads.models import Lead
from app.domains.pipeline.events import LeadStale
from app.platform import clock
from app.platform.events.consumers import PROCESS_KINDS
from app.platform.events.models import DomainEvent
from app.platform.scheduling.models import ScheduledJob
from tests.leadkit import create_lead
from workers import tasks as sweeps

LEAD_STALE = LeadStale.NAME

CHUNK = 2


def stale_chunks(db) -> list[list[int]]:
    """The clinics of each processing job's lead.stale events, in the order the jobs were written."""
    with db.unit_of_work() as session:
        clinic_of = dict(
            session.execute(
                sa.select(DomainEvent.id, DomainEvent.clinic_id).where(DomainEvent.type == LEAD_STALE)
            ).all()
        )
        payloads = session.scalars(
            sa.select(ScheduledJob.payload)
            .where(ScheduledJob.kind.in_(PROCESS_KINDS))
            .order_by(ScheduledJob.id)
        )
        named = [[clinic_of[i] for i in payload["event_ids"] if i in clinic_of] for payload in payloads]
    return [chunk for chunk in named if chunk]


def test_quiet_leads_are_flagged_in_chunks_shared_out_across_clinics(
    app, client, db, make_tenant, monkeypatch
):
    monkeypatch.setattr(app.config["SETTINGS"], "sweep_chunk_rows", CHUNK)
    backlog = make_tenant("Backlog Dental")  # the first clinic: first in line if clinics went in order
    tenant = make_tenant("Quiet Dental")
    leads = [create_lead(client, backlog, phone=f"+1415555020{n}")["id"] for n in range(5)]
    leads.append(create_lead(client, tenant, phone="+14155550301")["id"])
    with db.unit_of_work() as session:  # quiet for a month
        session.execute(
            sa.update(Lead)
            .where(Lead.id.in_(leads))
            .values(last_activity_at=clock.now() - timedelta(days=30))
        )

    with app.app_context():
        assert sweeps.find_stale_leads() >= 6

    chunks = stale_chunks(db)
    assert all(len(chunk) <= CHUNK for chunk in chunks)
    assert set(chunks[0]) == {backlog.id, tenant.id}  # both clinics served by the first chunk
    with db.unit_of_work() as session:
        flagged = session.scalar(
            sa.select(sa.func.count())
            .select_from(Lead)
            .where(Lead.id.in_(leads), Lead.quiet_flagged_at.is_not(None))
        )
    assert flagged == len(leads)
