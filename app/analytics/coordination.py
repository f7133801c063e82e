"""The coordinators' reports: why families pending a decision hesitate.

Hesitation reasons: the cohort's leads (captured in the range) that have one, by reason, with how
many of them converted since; the reason is the latest asked (a lead re-entering pending_decision
says it again).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.analytics.figures import cohort_conditions, period, ratio
from app.leads.models import HesitationReason, Lead, LeadStatus


def hesitation_reasons(
    *, session: Session, clinic_id: int, start, end, coordinator_id=None, source_id=None, now=None
) -> dict:
    """Per hesitation reason: leads, share of those with a reason, and conversions."""
    converted = sa.func.count(sa.case((Lead.status == LeadStatus.CONVERTED.value, Lead.id)))
    counts = {
        reason: (leads, won)
        for reason, leads, won in session.execute(
            sa.select(Lead.hesitation_reason, sa.func.count(), converted)
            .where(
                *cohort_conditions(clinic_id, start, end, coordinator_id, source_id),
                Lead.hesitation_reason.is_not(None),
            )
            .group_by(Lead.hesitation_reason)
        )
    }
    total = sum(leads for leads, _ in counts.values())
    rows = [
        {
            "reason": reason.value,
            "leads": counts.get(reason.value, (0, 0))[0],
            "share": ratio(counts.get(reason.value, (0, 0))[0], total),
            "converted": counts.get(reason.value, (0, 0))[1],
        }
        for reason in HesitationReason
    ]
    return {
        **period(start, end, coordinator_id=coordinator_id, source_id=source_id),
        "with_reason": total,
        "rows": rows,
    }


REPORTS = {"hesitation-reasons": hesitation_reasons}
