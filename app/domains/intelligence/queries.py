"""The reads that feed intelligence: calls by hour, early activity of leads, stage timelines.

Training reads every mature lead of a clinic (100,000 at scale) in one aggregate query: the early
window and the contact vocabulary are applied in SQL and only numbers come back (no datetimes to
convert, no date of birth to decrypt: the stored age group stands for it). One lead's facts for
scoring are worked out in Python from its activities (`facts_from`), which the next best action
reads as well; a test holds the two to the same answers.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.activities import rules as vocabulary
from app.domains.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.domains.intelligence import contact_time_rules, forecast_rules, score_rules
from app.domains.leads.models import Lead, LeadSource
from app.domains.tasks.models import LeadTask, TaskStatus
from app.platform.db import UnitOfWork

# Calls, messages and meetings: what the contact and attempt vocabulary reads
# (app/domains/activities/rules.py).
FACT_TYPES = (*vocabulary.CHANNEL_TYPES, ActivityType.IN_PERSON)
OPEN_TASK_STATUSES = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.OVERDUE)


def outbound_calls(
    *, session: UnitOfWork, clinic_id: int, since: datetime
) -> Iterator[tuple[datetime, bool, int]]:
    """(occurred_at, answered, source_id) of the clinic's outbound calls since `since`."""
    rows = session.execute(
        sa.select(LeadActivity.occurred_at, LeadActivity.outcome, Lead.source_id)
        .join(Lead, Lead.id == LeadActivity.lead_id)
        .where(*_outbound_calls_since(clinic_id, since))
        .execution_options(yield_per=10_000)
    )
    for occurred_at, outcome, source_id in rows:
        yield occurred_at, outcome in vocabulary.ANSWERED_OUTCOMES, source_id


def _outbound_calls_since(clinic_id: int, since: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        LeadActivity.clinic_id == clinic_id,
        LeadActivity.type == ActivityType.PHONE_CALL,
        LeadActivity.direction == ActivityDirection.OUTBOUND,
        LeadActivity.outcome.is_not(None),
        LeadActivity.occurred_at >= since,
    )


def calls_by_hour(
    *, session: UnitOfWork, clinic_id: int, since: datetime, zone: ZoneInfo
) -> list[tuple[int, int, bool, int]]:
    """(source id, local hour of week, answered, how many) of the clinic's outbound calls since
    `since`, counted.

    PostgreSQL counts them in SQL, by the hour of week in `zone` (AT TIME ZONE, the same IANA
    zones as Python's): a year of a big clinic's calls comes back as a few hundred rows instead of
    one row, and one zone conversion in Python, per call. SQLite has no
    zones: the calls are read and counted here.
    """
    if session.get_bind().dialect.name != "postgresql":
        counted = Counter(
            (source_id, contact_time_rules.hour_of_week(occurred_at, zone), answered)
            for occurred_at, answered, source_id in outbound_calls(
                session=session, clinic_id=clinic_id, since=since
            )
        )
        return [(source_id, slot, answered, calls) for (source_id, slot, answered), calls in counted.items()]
    local = sa.func.timezone(zone.key, LeadActivity.occurred_at)
    slot = sa.cast((sa.extract("isodow", local) - 1) * 24 + sa.extract("hour", local), sa.Integer)
    answered = LeadActivity.outcome.in_(sorted(str(o) for o in vocabulary.ANSWERED_OUTCOMES))
    calls = (
        sa.select(Lead.source_id, slot.label("slot"), answered.label("answered"))
        .join(Lead, Lead.id == LeadActivity.lead_id)
        .where(*_outbound_calls_since(clinic_id, since))
        .subquery()
    )
    # Grouped outside: the expressions carry bound values, and each copy would be a new parameter.
    stmt = sa.select(calls.c.source_id, calls.c.slot, calls.c.answered, sa.func.count()).group_by(
        calls.c.source_id, calls.c.slot, calls.c.answered
    )
    return [(source_id, hour, bool(yes), count) for source_id, hour, yes, count in session.execute(stmt)]


def _facts(
    created_at: datetime,
    category: str | None,
    treatments,
    age_group: str | None,
    activities: list[tuple],
    cutoff: datetime,
) -> score_rules.LeadFacts:
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
    return score_rules.LeadFacts(
        source_category=category,
        treatments=tuple(treatments or ()),
        age_group=age_group,
        response_hours=(first_response - created_at).total_seconds() / 3600 if first_response else None,
        attempts=attempts,
        contacts=contacts,
    )


def _activities_of(session: UnitOfWork, lead_ids: list[int]) -> dict[int, list]:
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


def source_categories(*, session: UnitOfWork, clinic_id: int) -> dict[int, str]:
    return dict(
        session.execute(
            sa.select(LeadSource.id, LeadSource.category).where(LeadSource.clinic_id == clinic_id)
        ).all()
    )


def fact_activities(*, session: UnitOfWork, lead_ids: list[int]) -> dict[int, list[tuple]]:
    """Each lead's calls, messages and meetings (occurred_at, type, direction, outcome, details),
    oldest first."""
    grouped = _activities_of(session, lead_ids)
    for rows in grouped.values():
        rows.sort(key=lambda row: row[0])
    return grouped


def leads_with_open_task(*, session: UnitOfWork, lead_ids: list[int]) -> set[int]:
    return set(
        session.scalars(
            sa.select(LeadTask.lead_id)
            .where(LeadTask.lead_id.in_(lead_ids), LeadTask.status.in_(OPEN_TASK_STATUSES))
            .distinct()
        )
    )


def facts_from(
    lead: Lead, category: str | None, activities: list[tuple], now: datetime
) -> score_rules.LeadFacts:
    """A lead's facts as of its early window's end, or now if that is sooner."""
    cutoff = min(now, lead.created_at + timedelta(days=score_rules.EARLY_DAYS))
    return _facts(
        lead.created_at, category, lead.treatment_interest, lead.patient_age_group, activities, cutoff
    )


def _days_between(later, earlier, dialect: str) -> sa.ColumnElement[float]:
    """SQL: days from `earlier` to `later` (fractional; null if either is)."""
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", later - earlier), sa.Float) / 86400.0
    return sa.func.julianday(later) - sa.func.julianday(earlier)  # SQLite: naive UTC text


def _early_activity(leads: sa.CTE, dialect: str) -> sa.Subquery:
    """Per lead of `leads` (id, created_at): hours to its first response, its attempts and contacts,
    within its first EARLY_DAYS (the contact vocabulary's SQL, so the same shapes as `_facts`)."""
    a = LeadActivity
    since_capture = _days_between(a.occurred_at, leads.c.created_at, dialect)
    reached = sa.or_(a.direction == ActivityDirection.OUTBOUND, vocabulary.contact_clause(a))
    return (
        sa.select(
            a.lead_id,
            (sa.func.min(sa.case((reached, since_capture))) * 24).label("response_hours"),
            sa.func.sum(sa.case((vocabulary.attempt_clause(a), 1), else_=0)).label("attempts"),
            sa.func.sum(sa.case((vocabulary.contact_clause(a), 1), else_=0)).label("contacts"),
        )
        .join(leads, leads.c.id == a.lead_id)
        .where(a.type.in_(FACT_TYPES), since_capture <= score_rules.EARLY_DAYS)
        .group_by(a.lead_id)
        .subquery("early")
    )


def training_facts(
    *, session: UnitOfWork, clinic_id: int | None, since: datetime, until: datetime, limit: int | None = None
) -> list[tuple[int, score_rules.LeadFacts, bool]]:
    """(lead id, facts, converted within CONVERSION_DAYS) of the leads captured in [since, until) (of one
    clinic, or of all: the newest `limit`), each as of the end of its early window.

    One statement: the leads, their early activity aggregated apart (a narrow GROUP BY, not one
    over the leads' wide rows) and joined back; only numbers and the treatments come back.
    """
    dialect = session.get_bind().dialect.name
    chosen = sa.select(Lead.id, Lead.created_at).where(
        Lead.created_at >= since, Lead.created_at < until, Lead.deleted_at.is_(None)
    )
    if clinic_id is not None:
        chosen = chosen.where(Lead.clinic_id == clinic_id)
    if limit is not None:
        chosen = chosen.order_by(Lead.created_at.desc(), Lead.id.desc()).limit(limit)
    leads = chosen.cte("chosen")
    early = _early_activity(leads, dialect)
    converted = _days_between(Lead.converted_at, Lead.created_at, dialect) <= score_rules.CONVERSION_DAYS
    stmt = (
        sa.select(
            Lead.id,
            Lead.source_id,
            # As JSON text: a clinic's leads share a few dozen treatment lists, each parsed once.
            sa.cast(Lead.treatment_interest, sa.Text),
            Lead.patient_age_group,
            early.c.response_hours,
            sa.func.coalesce(early.c.attempts, 0),
            sa.func.coalesce(early.c.contacts, 0),
            sa.case((converted, 1), else_=0),
        )
        .join(leads, leads.c.id == Lead.id)
        .outerjoin(early, early.c.lead_id == Lead.id)
    )
    categories = dict(session.execute(sa.select(LeadSource.id, LeadSource.category)).all())
    treatment_lists: dict[str | None, tuple[str, ...]] = {}
    out = []
    # A Core execution: plain rows, none of the ORM's per-row work over 100,000 rows.
    rows = session.connection().execute(stmt)
    for lead_id, source_id, treatments, age_group, hours, attempts, contacts, label in rows:
        if treatments not in treatment_lists:
            treatment_lists[treatments] = tuple(json.loads(treatments) if treatments else ())
        facts = score_rules.LeadFacts(
            source_category=categories.get(source_id),
            treatments=treatment_lists[treatments],
            age_group=age_group,
            response_hours=hours,
            attempts=int(attempts),
            contacts=int(contacts),
        )
        out.append((lead_id, facts, bool(label)))
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


def timelines(*, session: UnitOfWork, clinic_id: int, since: datetime) -> list[forecast_rules.Timeline]:
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
        out.append(forecast_rules.Timeline(created_at, stages, converted_at, closed))
    return out
