"""Retention: a clinic's closed leads (lost or converted) are erased N months after they closed.

The clinic's setting `erase_closed_after_months` (PUT /api/clinic settings): 0 or absent, never.
The daily sweep erases a batch per transaction (each lead as `followup leads erase` would) until
none is due; a second sweep at once finds the rows already erased and skips them. The same sweep
purges the clinic's ledger jobs that gave up (failed, dead) longer ago than the retention: nothing
will run them, and their payloads and errors may describe a person (app/platform/scheduling/sweeps.py).
It also forgets the SendGrid event ids older than the Event Webhook's window
(app/domains/intake/inbound/sendgrid.py): their events are refused by age, the memory is no longer needed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.intake.inbound import sendgrid
from app.domains.leads.models import Lead, LeadStatus
from app.domains.privacy import erasure
from app.platform.scheduling import sweeps as ledger_sweeps

SETTING = "erase_closed_after_months"
DAYS_PER_MONTH = 30.44  # months of the setting are average months: a day either way does not matter


def retention_months(settings: dict | None) -> int:
    """The clinic's retention in months; 0: never erase."""
    value = (settings or {}).get(SETTING)
    return int(value) if isinstance(value, int) and value > 0 else 0


def retention_cutoff(months: int, now: datetime) -> datetime:
    return now - timedelta(days=months * DAYS_PER_MONTH)


def due_lead_ids(session, *, clinic_id: int, months: int, now: datetime, limit: int) -> list[int]:
    """Closed, not yet erased leads of the clinic that closed more than `months` ago."""
    cutoff = retention_cutoff(months, now)
    closed_at = sa.func.coalesce(Lead.lost_at, Lead.converted_at)
    return list(
        session.scalars(
            sa.select(Lead.id)
            .where(
                Lead.clinic_id == clinic_id,
                Lead.status.in_([LeadStatus.LOST.value, LeadStatus.CONVERTED.value]),
                Lead.erased_at.is_(None),
                closed_at.is_not(None),
                closed_at < cutoff,
            )
            .order_by(Lead.id)
            .limit(limit)
        )
    )


def erase_expired_leads(*, db, now: datetime) -> int:
    """The daily sweep over every clinic with a retention; returns how many leads it erased."""
    batch, erased = db.settings.retention_batch, 0
    with db.unit_of_work() as session:
        sendgrid.forget_past_events(session=session, now=now)
    with db.unit_of_work() as session:
        clinics = [(c.id, retention_months(c.settings)) for c in session.scalars(sa.select(Clinic))]
    for clinic_id, months in clinics:
        if not months:
            continue
        ledger_sweeps.purge_gave_up(db=db, clinic_id=clinic_id, cutoff=retention_cutoff(months, now))
        while True:
            with db.unit_of_work() as session:
                ids = due_lead_ids(session, clinic_id=clinic_id, months=months, now=now, limit=batch)
                for lead_id in ids:
                    lead = erasure.get_erasable_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
                    erasure.erase_lead(session=session, lead=lead, actor_ref="retention", now=now)
            erased += len(ids)
            if len(ids) < batch:
                break
    return erased
