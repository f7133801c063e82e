"""The conversion and growth reports: time to convert, lead velocity, source trends, revenue and ROI.

They read the leads table only (no summary rows, no write hooks): conversions are few next to leads,
and the partial index on (clinic_id, converted_at) reads just the converted ones. Definitions:
- a conversion "in the range" is a lead converted in [from, to) (converted_at), whenever captured:
  what a month's conversions took and brought in (capture-time cohorts would count only the fast
  converters of a recent range);
- time to convert: days from capture (created_at) to conversion (converted_at);
- lead velocity: leads captured in [from, to) per week against the previous period of the same
  length, [from - (to - from), from); weeks are counted from `from` (the last may be partial);
- source trends: per UTC month and source, leads captured and conversions made in it (and in
  the range);
- revenue: the sum of `treatment_value` recorded at conversion (a plain amount in the clinic's
  currency); a conversion recorded without one counts as a conversion, not as revenue;
- spend: the source's monthly_cost prorated over the range, as the sources report prorates it; ROI =
  (revenue - spend) / spend, none without a recorded cost. Spend is the source's whole, also when
  the report is narrowed to one coordinator.
Deleted leads count nowhere.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from app.domains.analytics import queries
from app.domains.analytics.figures import (
    Cohort,
    cohort_conditions,
    money,
    num,
    percentiles,
    period,
    prorated_spend,
    ratio,
    seconds,
)
from app.domains.leads.models import Lead, LeadSource, LeadStatus
from app.platform.db import UnitOfWork

DAY_SECONDS = 86400


# --- building blocks -------------------------------------------------------------------------------


def _conversion_conditions(clinic_id: int, start, end, coordinator_id, source_id) -> list:
    """The clinic's leads converted in [start, end), optionally one owner's and one source's."""
    conditions = [
        Lead.clinic_id == clinic_id,
        Lead.converted_at.is_not(None),
        Lead.converted_at >= start,
        Lead.converted_at < end,
        Lead.status == LeadStatus.CONVERTED,
        Lead.deleted_at.is_(None),
    ]
    if coordinator_id is not None:
        conditions.append(Lead.assigned_to_id == coordinator_id)
    if source_id is not None:
        conditions.append(Lead.source_id == source_id)
    return conditions


def _sources(session: UnitOfWork, clinic_id: int, source_id=None) -> list:
    """(id, name, category, monthly_cost) of the clinic's sources (one when `source_id`), by name."""
    stmt = (
        sa.select(LeadSource.id, LeadSource.name, LeadSource.category, LeadSource.monthly_cost)
        .where(LeadSource.clinic_id == clinic_id)
        .order_by(LeadSource.name, LeadSource.id)
    )
    if source_id is not None:
        stmt = stmt.where(LeadSource.id == source_id)
    return session.execute(stmt).all()


def change_pct(current: float, previous: float) -> float | None:
    """The % change from `previous` to `current`; None when there was nothing before (no base)."""
    return num((current - previous) * 100 / previous, 2) if previous else None


# --- reports ---------------------------------------------------------------------------------------


def time_to_convert(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Days from capture to conversion of the leads converted in the range: overall and per source."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    days = (seconds(session, Lead.converted_at, Lead.created_at) / DAY_SECONDS).label("days")
    conversions = (
        sa.select(Lead.source_id.label("source_id"), days)
        .where(*_conversion_conditions(clinic_id, start, end, coordinator_id, source_id))
        .subquery()
    )
    per_source = {
        sid: (count, average)
        for sid, count, average in session.execute(
            sa.select(conversions.c.source_id, sa.func.count(), sa.func.avg(conversions.c.days)).group_by(
                conversions.c.source_id
            )
        )
    }
    medians = percentiles(session, conversions, conversions.c.days, conversions.c.source_id)
    count, average = session.execute(sa.select(sa.func.count(), sa.func.avg(conversions.c.days))).one()
    overall_median = percentiles(session, conversions, conversions.c.days).get(0, (None, None))[0]
    rows = []
    names = {sid: name for sid, name, _, _ in _sources(session, clinic_id, source_id)}
    for sid in sorted(per_source, key=lambda s: (names[s], s)):  # every lead has a source
        n, avg = per_source[sid]
        rows.append(
            {
                "source_id": sid,
                "name": names[sid],
                "conversions": n,
                "average_days": num(avg),
                "median_days": medians.get(sid, (None, None))[0],
            }
        )
    return {
        **period(start, end, coordinator_id=coordinator_id, source_id=source_id),
        "conversions": count,
        "average_days": num(average),
        "median_days": overall_median,
        "rows": rows,
    }


def lead_velocity(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """New leads per week in the range against the previous period of the same length, and the % change."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    length = end - start
    previous_start = start - length
    current = _weekly_counts(session, clinic_id, start, end, coordinator_id, source_id)
    previous = _weekly_counts(session, clinic_id, previous_start, start, coordinator_id, source_id)
    weeks = -(-length // timedelta(weeks=1))  # the last week may be partial
    rows = []
    for week in range(weeks):
        week_start = start + timedelta(weeks=week)
        leads, before = current.get(week, 0), previous.get(week, 0)
        rows.append(
            {
                "week_start": week_start.isoformat(),
                "week_end": min(week_start + timedelta(weeks=1), end).isoformat(),
                "leads": leads,
                "previous_week_start": (previous_start + timedelta(weeks=week)).isoformat(),
                "previous_leads": before,
                "change_pct": change_pct(leads, before),
            }
        )
    leads, before = sum(current.values()), sum(previous.values())
    in_weeks = length / timedelta(weeks=1)
    return {
        **period(start, end, coordinator_id=coordinator_id, source_id=source_id),
        "previous_from": previous_start,
        "previous_to": start,
        "weeks": num(in_weeks, 4),
        "leads": leads,
        "previous_leads": before,
        "leads_per_week": num(leads / in_weeks),
        "previous_leads_per_week": num(before / in_weeks),
        "change_pct": change_pct(leads, before),  # the periods are as long: the per-week rates' change
        "rows": rows,
    }


def _weekly_counts(session: UnitOfWork, clinic_id: int, start, end, coordinator_id, source_id) -> dict:
    """{week number from `start`: leads captured in it} within [start, end)."""
    week = queries.week_index(session, Lead.created_at, start)
    stmt = (
        sa.select(week, sa.func.count())
        .where(*cohort_conditions(clinic_id, start, end, coordinator_id, source_id))
        .group_by(week)
    )
    return {int(index): count for index, count in session.execute(stmt)}


def source_trends(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Per UTC month and source: leads captured, conversions made (and their revenue) in the range."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    captured_month = queries.utc_month(session, Lead.created_at)
    captured = session.execute(
        sa.select(captured_month, Lead.source_id, sa.func.count())
        .where(*cohort_conditions(clinic_id, start, end, coordinator_id, source_id))
        .group_by(captured_month, Lead.source_id)
    ).all()
    converted_month = queries.utc_month(session, Lead.converted_at)
    converted = session.execute(
        sa.select(converted_month, Lead.source_id, sa.func.count(), sa.func.sum(Lead.treatment_value))
        .where(*_conversion_conditions(clinic_id, start, end, coordinator_id, source_id))
        .group_by(converted_month, Lead.source_id)
    ).all()
    cells: dict[tuple, dict] = {}

    def cell(month, sid) -> dict:
        return cells.setdefault((str(month), sid), {"leads": 0, "conversions": 0, "revenue": None})

    for month, sid, count in captured:
        cell(month, sid)["leads"] = count
    for month, sid, count, revenue in converted:
        cell(month, sid).update(conversions=count, revenue=revenue)
    sources = {sid: (name, category) for sid, name, category, _ in _sources(session, clinic_id, source_id)}
    rows = []
    for month, sid in sorted(cells, key=lambda k: (k[0], sources[k[1]][0], k[1])):
        name, category = sources[sid]
        figures = cells[(month, sid)]
        rows.append(
            {
                "month": month[:7],
                "source_id": sid,
                "name": name,
                "category": category,
                "leads": figures["leads"],
                "conversions": figures["conversions"],
                "revenue": money(Decimal(figures["revenue"] or 0)),
            }
        )
    return {**period(start, end, coordinator_id=coordinator_id, source_id=source_id), "rows": rows}


def revenue(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Per source: conversions in the range, their recorded treatment value, prorated spend and ROI."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    found = {
        sid: (count, valued, total)
        for sid, count, valued, total in session.execute(
            sa.select(
                Lead.source_id,
                sa.func.count(),
                sa.func.count(Lead.treatment_value),
                sa.func.sum(Lead.treatment_value),
            )
            .where(*_conversion_conditions(clinic_id, start, end, coordinator_id, source_id))
            .group_by(Lead.source_id)
        )
    }
    sources = _sources(session, clinic_id, source_id)
    rows = []
    totals = {"conversions": 0, "revenue": Decimal(0), "costed_revenue": Decimal(0), "spend": None}
    for sid, name, category, monthly_cost in sources:
        count, valued, total = found.get(sid, (0, 0, None))
        total = Decimal(total or 0)
        spend = prorated_spend(monthly_cost, start, end)
        rows.append(
            {
                "source_id": sid,
                "name": name,
                "category": category,
                "conversions": count,
                "conversions_with_value": valued,
                "revenue": money(total),
                "average_value": money(total / valued) if valued else None,
                "spend": money(spend),
                "roi": _roi(total, spend),
            }
        )
        totals["conversions"] += count
        totals["revenue"] += total
        if spend is not None:
            totals["spend"] = (totals["spend"] or Decimal(0)) + spend
            totals["costed_revenue"] += total
    return {
        **period(start, end, coordinator_id=coordinator_id, source_id=source_id),
        "conversions": totals["conversions"],
        "revenue": money(totals["revenue"]),
        "spend": money(totals["spend"]),
        # Over the sources with a recorded cost: revenue from uncosted ones would inflate it.
        "roi": _roi(totals["costed_revenue"], totals["spend"]),
        "rows": rows,
    }


def _roi(revenue_: Decimal, spend: Decimal | None) -> float | None:
    """(revenue - spend) / spend as a ratio (1.5 = 150 %); None without a cost to divide by."""
    if not spend:
        return None
    return ratio(revenue_ - spend, spend)


REPORTS = {
    "time-to-convert": time_to_convert,
    "lead-velocity": lead_velocity,
    "source-trends": source_trends,
    "revenue": revenue,
}
