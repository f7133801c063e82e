"""The coordinators' reports: why families pending a decision hesitate, and speed to lead split
into the system's routing time and the coordinator's human time.

Speed to lead's split, per lead of the cohort: routing is capture -> the later of the owner's
assignment and the first task (what the system took to put the lead in someone's hands); human is
that first task -> a person's first outbound attempt, and -> the first contact (a two-way
exchange). Each group (coordinator, source) shows the median minutes of each, over the leads that
have both ends.

Hesitation reasons: the cohort's leads (captured in the range) that have one, by reason, with how
many of them converted since; the reason is the latest asked (a lead re-entering pending_decision
says it again).
"""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.analytics import queries
from app.domains.analytics.figures import Cohort, cohort_conditions, num, period, ratio
from app.domains.leads.models import HesitationReason, Lead, LeadStatus
from app.platform.db import UnitOfWork


def hesitation_reasons(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Per hesitation reason: leads, share of those with a reason, and conversions."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
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


def speed_split(
    *, session: UnitOfWork, clinic_id: int, start, end, coordinator_id=None, source_id=None
) -> dict:
    """Routing and human minutes (medians) by coordinator and by source, from the spans kept on each
    lead (leads.models.kept_spans: null where a lead has none): a grouped pass over the cohort's leads
    per grouping, each in its group's order from an index including the spans (queries.medians_by)."""
    spans = {
        "routing_median_minutes": Lead.routing_seconds / 60.0,
        "human_to_first_attempt_median_minutes": Lead.human_attempt_seconds / 60.0,
        "human_to_first_contact_median_minutes": Lead.human_contact_seconds / 60.0,
    }
    groups = {"coordinator_id": Lead.assigned_to_id, "source_id": Lead.source_id}
    conditions = cohort_conditions(clinic_id, start, end, coordinator_id, source_id)
    medians = queries.medians_by(session, groups, spans, conditions)
    return {
        f"by_{key.removesuffix('_id')}": [
            {key: value, "leads": leads, **{name: num(m) for name, m in zip(spans, of_spans, strict=True)}}
            for value, (leads, *of_spans) in sorted(
                medians[key].items(), key=lambda item: (item[0] is None, item[0] or 0)
            )
        ]
        for key in groups
    }


REPORTS = {"hesitation-reasons": hesitation_reasons}
