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

from statistics import median

import sqlalchemy as sa

from app.domains.activities import rules as activity_rules
from app.domains.activities.models import ActivityDirection, LeadActivity
from app.domains.analytics.figures import Cohort, cohort_conditions, num, period, ratio
from app.domains.leads.models import HesitationReason, Lead, LeadStatus
from app.domains.tasks.models import LeadTask
from app.platform import clock
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


def _first(column, *conditions):
    return sa.select(sa.func.min(column)).where(*conditions).correlate(Lead).scalar_subquery()


def speed_split(
    *, session: UnitOfWork, clinic_id: int, start, end, coordinator_id=None, source_id=None
) -> dict:
    """Routing and human minutes (medians) by coordinator and by source."""
    first_task = _first(LeadTask.created_at, LeadTask.lead_id == Lead.id)
    first_attempt = _first(
        LeadActivity.occurred_at,
        LeadActivity.lead_id == Lead.id,
        LeadActivity.direction == ActivityDirection.OUTBOUND.value,
        LeadActivity.actor != "system",
    )
    first_contact = _first(
        LeadActivity.occurred_at, LeadActivity.lead_id == Lead.id, activity_rules.contact_clause()
    )
    rows = session.execute(
        sa.select(
            Lead.assigned_to_id, Lead.source_id, Lead.created_at, Lead.assigned_at,
            first_task, first_attempt, first_contact,
        ).where(*cohort_conditions(clinic_id, start, end, coordinator_id, source_id))
    ).all()  # fmt: skip
    groups: dict[str, dict] = {"coordinator_id": {}, "source_id": {}}
    for owner, source, created, assigned, task, attempt, contact in rows:
        created, assigned, task = clock.as_utc(created), clock.as_utc(assigned), clock.as_utc(task)
        routed = max(assigned, task) if assigned and task else None
        spans = {
            "routing": _minutes(created, routed),
            "to_first_attempt": _minutes(task, clock.as_utc(attempt)),
            "to_first_contact": _minutes(task, clock.as_utc(contact)),
        }
        for key, value in (("coordinator_id", owner), ("source_id", source)):
            group = groups[key].setdefault(value, {"leads": 0, **{name: [] for name in spans}})
            group["leads"] += 1
            for name, minutes in spans.items():
                if minutes is not None:
                    group[name].append(minutes)
    return {
        f"by_{key.removesuffix('_id')}": [
            {
                key: value,
                "leads": group["leads"],
                "routing_median_minutes": _median(group["routing"]),
                "human_to_first_attempt_median_minutes": _median(group["to_first_attempt"]),
                "human_to_first_contact_median_minutes": _median(group["to_first_contact"]),
            }
            for value, group in sorted(by_value.items(), key=lambda item: (item[0] is None, item[0] or 0))
        ]
        for key, by_value in groups.items()
    }


def _minutes(start, end) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 60


def _median(values: list[float]) -> float | None:
    return num(median(values)) if values else None


REPORTS = {"hesitation-reasons": hesitation_reasons}
