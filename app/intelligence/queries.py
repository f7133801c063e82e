"""The reads that feed intelligence: calls by hour, early activity of leads, stage timelines.

Plain SQLAlchemy (no dialect branches): the per-lead windows (first 7 days) are applied in Python
over one query per batch, so the same statements run on PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.activities import rules as vocabulary
from app.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.intelligence import rules
from app.leads.models import Lead, LeadSource
from app.tasks.models import LeadTask, TaskStatus

# Calls, messages and meetings: what the contact and attempt vocabulary reads (app/activities/rules.py).
FACT_TYPES = (*vocabulary.CHANNEL_TYPES, ActivityType.IN_PERSON)
LEAD_BATCH = 5000  # leads per activity query while gathering training facts
OPEN_TASK_STATUSES = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.OVERDUE)


def outbound_calls(
    *, session: Session, clinic_id: int, since: datetime
) -> Iterator[tuple[datetime, bool, int]]:
    """(occurred_at, answered, source_id) of the clinic's outbound calls since `since`."""
    rows = session.execute(
        sa.select(LeadActivity.occurred_at, LeadActivity.outcome, Lead.source_id)
        .join(Lead, Lead.id == LeadActivity.lead_id)
        .where(
            LeadActivity.clinic_id == clinic_id,
            LeadActivity.type == ActivityType.PHONE_CALL,
            LeadActivity.direction == ActivityDirection.OUTBOUND,
            LeadActivity.outcome.is_not(None),
            LeadActivity.occurred_at >= since,
        )
        .execution_options(yield_per=10_000)
    )
    for occurred_at, outcome, source_id in rows:
        yield occurred_at, outcome in vocabulary.ANSWERED_OUTCOMES, source_id


@dataclass(frozen=True)
class LeadFactsRow:
    lead_id: int
    created_at: datetime
    converted_at: datetime | None
    facts: rules.LeadFacts


def _facts(
    created_at: datetime, category: str | None, treatments, dob, activities: list[tuple], cutoff: datetime
) -> rules.LeadFacts:
    """The score's features from the lead's activities (occurred_at, type, direction, outcome, details)."""
    first_response, attempts, contacts = None, 0, 0
    for occurred_at, kind, direction, outcome, details in sorted(activities, key=lambda a: a[0]):
        if occurred_at > cutoff:
            break
        contact = vocabulary.is_contact(type=kind, direction=direction, outcome=outcome)
        if first_response is None and (direction == ActivityDirection.OUTBOUND or contact):
            first_response = occurred_at
        attempts += vocabulary.is_attempt(type=kind, direction=direction, outcome=outcome, details=details)
        contacts += contact
    return rules.LeadFacts(
        source_category=category,
        treatments=tuple(treatments or ()),
        patient_age=rules.years_between(dob, created_at),
        response_hours=(first_response - created_at).total_seconds() / 3600 if first_response else None,
        attempts=attempts,
        contacts=contacts,
    )


def _activities_of(session: Session, lead_ids: list[int]) -> dict[int, list]:
    stmt = sa.select(
        LeadActivity.lead_id,
        LeadActivity.occurred_at,
        LeadActivity.type,
        LeadActivity.direction,
        LeadActivity.outcome,
        LeadActivity.details,
    ).where(LeadActivity.lead_id.in_(lead_ids), LeadActivity.type.in_(FACT_TYPES))
    grouped: dict[int, list] = {}
    for lead_id, *rest in session.execute(stmt):
        grouped.setdefault(lead_id, []).append(tuple(rest))
    return grouped


def source_categories(*, session: Session, clinic_id: int) -> dict[int, str]:
    return dict(
        session.execute(
            sa.select(LeadSource.id, LeadSource.category).where(LeadSource.clinic_id == clinic_id)
        ).all()
    )


def fact_activities(*, session: Session, lead_ids: list[int]) -> dict[int, list[tuple]]:
    """Each lead's calls, messages and meetings (occurred_at, type, direction, outcome, details),
    oldest first."""
    grouped = _activities_of(session, lead_ids)
    for rows in grouped.values():
        rows.sort(key=lambda row: row[0])
    return grouped


def leads_with_open_task(*, session: Session, lead_ids: list[int]) -> set[int]:
    return set(
        session.scalars(
            sa.select(LeadTask.lead_id)
            .where(LeadTask.lead_id.in_(lead_ids), LeadTask.status.in_(OPEN_TASK_STATUSES))
            .distinct()
        )
    )


def facts_from(lead: Lead, category: str | None, activities: list[tuple], now: datetime) -> rules.LeadFacts:
    """A lead's facts as of its early window's end, or now if that is sooner."""
    cutoff = min(now, lead.created_at + timedelta(days=rules.EARLY_DAYS))
    return _facts(lead.created_at, category, lead.treatment_interest, lead.patient_dob, activities, cutoff)


def lead_facts(
    *, session: Session, clinic_id: int | None, since: datetime, until: datetime, limit: int | None = None
) -> list[LeadFactsRow]:
    """Facts and outcomes of the leads captured in [since, until) (of one clinic, or of all)."""
    stmt = (
        sa.select(
            Lead.id,
            Lead.created_at,
            Lead.converted_at,
            Lead.source_id,
            Lead.treatment_interest,
            Lead.patient_dob,
        )
        .where(Lead.created_at >= since, Lead.created_at < until, Lead.deleted_at.is_(None))
        .order_by(Lead.created_at.desc())
    )
    if clinic_id is not None:
        stmt = stmt.where(Lead.clinic_id == clinic_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    categories = dict(session.execute(sa.select(LeadSource.id, LeadSource.category)).all())
    out = []
    leads = session.execute(stmt).all()
    for start in range(0, len(leads), LEAD_BATCH):
        batch = leads[start : start + LEAD_BATCH]
        activities = _activities_of(session, [row.id for row in batch])
        for row in batch:
            cutoff = row.created_at + timedelta(days=rules.EARLY_DAYS)
            facts = _facts(
                row.created_at,
                categories.get(row.source_id),
                row.treatment_interest,
                row.patient_dob,
                activities.get(row.id, []),
                cutoff,
            )
            out.append(LeadFactsRow(row.id, row.created_at, row.converted_at, facts))
    return out


@dataclass(frozen=True)
class ReachOuts:
    attempts_in_a_row: int
    contacts: int
    last_contact_at: datetime | None
    breakup_sent_at: datetime | None


def reach_outs(activities: list[tuple]) -> ReachOuts:
    """Attempts since the last contact, contacts, the latest contact and break-up message, from a
    lead's (occurred_at, type, direction, outcome, details) oldest first."""
    in_a_row, counting, contacts = 0, True, 0
    last_contact = breakup = None
    for occurred_at, kind, direction, outcome, details in reversed(activities):
        if vocabulary.is_contact(type=kind, direction=direction, outcome=outcome):
            contacts += 1
            last_contact = last_contact or occurred_at
            counting = False
        elif vocabulary.is_attempt(type=kind, direction=direction, outcome=outcome, details=details):
            in_a_row += 1 if counting else 0
        if breakup is None and (details or {}).get(vocabulary.BREAK_UP):
            breakup = occurred_at
    return ReachOuts(in_a_row, contacts, last_contact, breakup)


def timelines(*, session: Session, clinic_id: int, since: datetime) -> list[rules.Timeline]:
    """Every lead captured since `since` (or still open) with the stages it entered."""
    leads = session.execute(
        sa.select(Lead.id, Lead.created_at, Lead.converted_at, Lead.lost_at, Lead.status, Lead.updated_at)
        .where(Lead.clinic_id == clinic_id, Lead.deleted_at.is_(None))
        .where(sa.or_(Lead.created_at >= since, Lead.status.in_(("NEW", "ACTIVE"))))
    ).all()
    changes: dict[int, list[tuple]] = {}
    for lead_id, previous, new, occurred_at in session.execute(
        sa.select(
            LeadActivity.lead_id,
            LeadActivity.previous_stage,
            LeadActivity.new_stage,
            LeadActivity.occurred_at,
        )
        .where(
            LeadActivity.clinic_id == clinic_id,
            LeadActivity.type == ActivityType.STAGE_CHANGE,
            LeadActivity.occurred_at >= since,
        )
        .order_by(LeadActivity.occurred_at, LeadActivity.id)
    ):
        changes.setdefault(lead_id, []).append((previous, new, occurred_at))
    out = []
    for lead_id, created_at, converted_at, lost_at, status, updated_at in leads:
        moves = changes.get(lead_id, [])
        first = (moves[0][0] if moves and moves[0][0] else None) or "new_lead"
        stages = ((first, created_at), *((new, at) for _previous, new, at in moves if new))
        closed = converted_at or lost_at or (updated_at if status == "ARCHIVED" else None)
        out.append(rules.Timeline(created_at, stages, converted_at, closed))
    return out
