"""The spec's "in a follow-up sequence" label: a lead with an active enrollment. The lead list
filters by it (`GET /api/leads?in_sequence=true|false`, through LEAD_LIST_FILTERS of app/handlers.py)."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.automation.models import EnrollmentStatus, SequenceEnrollment
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork, among


def active_enrollment():
    """Whether the lead of the row has an active enrollment (ix_sequence_enrollments_lead)."""
    return (
        sa.select(SequenceEnrollment.id)
        .where(
            SequenceEnrollment.lead_id == Lead.id,
            SequenceEnrollment.status == EnrollmentStatus.ACTIVE.value,
        )
        .exists()
    )


def list_conditions(in_sequence: bool | None) -> list:
    """The lead-list filter: true keeps the leads in a sequence, false the others, absent all."""
    if in_sequence is None:
        return []
    return [active_enrollment() if in_sequence else ~active_enrollment()]


def leads_in_sequence(session: UnitOfWork, lead_ids: list[int]) -> set[int]:
    """Which of these leads are in an active sequence: the lead answer's `in_sequence`."""
    return set(
        session.scalars(
            sa.select(SequenceEnrollment.lead_id).where(
                among(session, SequenceEnrollment.lead_id, lead_ids),
                SequenceEnrollment.status == EnrollmentStatus.ACTIVE.value,
            )
        )
    )
