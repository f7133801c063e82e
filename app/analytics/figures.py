"""The building blocks every analytics report shares: the cohort's conditions, percentiles in SQL,
and the rounding of counts, ratios and money (one place, so two reports never round differently)."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.analytics import queries
from app.leads.models import Lead

DAYS_PER_MONTH = Decimal("30.4375")  # the mean month (365.25 / 12)


def seconds(session: Session, later, earlier):
    """SQL: seconds from `earlier` to `later`."""
    return queries.seconds_between(session, later, earlier)


def is_postgresql(session: Session) -> bool:
    return queries.is_postgresql(session)


def cohort_conditions(clinic_id: int, start: datetime, end: datetime, coordinator_id, source_id) -> list:
    conditions = [
        Lead.clinic_id == clinic_id,
        Lead.deleted_at.is_(None),
        Lead.created_at >= start,
        Lead.created_at < end,
    ]
    if coordinator_id is not None:
        conditions.append(Lead.assigned_to_id == coordinator_id)
    if source_id is not None:
        conditions.append(Lead.source_id == source_id)
    return conditions


def percentiles(session: Session, source, value_col, group_col=None, places: int = 2) -> dict:
    """{group: (median, p90)} of `value_col` over the rows of `source`, in SQL.

    Median: the mean of the middle one or two values. p90: nearest rank, the ceil(0.9 n)-th value.
    PostgreSQL has them as ordered-set aggregates (percentile_cont, percentile_disc: one sort per
    group, no window pass); elsewhere row numbers pick them.
    """
    group = group_col if group_col is not None else sa.literal(0)
    if is_postgresql(session):
        stmt = (
            sa.select(
                group,
                sa.func.percentile_cont(0.5).within_group(value_col),
                sa.func.percentile_disc(0.9).within_group(value_col),
            )
            .select_from(source)
            .where(value_col.is_not(None))
            .group_by(group)
        )
        return {g: (num(med, places), num(p90, places)) for g, med, p90 in session.execute(stmt)}
    ranked = sa.select(
        group.label("g"),
        value_col.label("v"),
        sa.func.row_number().over(partition_by=group, order_by=value_col).label("rn"),
        sa.func.count().over(partition_by=group).label("n"),
    ).select_from(source)
    ranked = ranked.subquery()
    rn, n, v = ranked.c.rn, ranked.c.n, ranked.c.v
    stmt = sa.select(
        ranked.c.g,
        sa.func.avg(sa.case((rn.in_([(n + 1) // 2, (n + 2) // 2]), v))),
        sa.func.max(sa.case((rn == (9 * n + 9) // 10, v))),
    ).group_by(ranked.c.g)
    return {g: (num(med, places), num(p90, places)) for g, med, p90 in session.execute(stmt)}


def num(value, places: int = 2):
    if value is None:
        return None
    return float(Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def ratio(part, whole):
    return num(part / whole, 4) if whole else None


def money(value: Decimal | None):
    if value is None:
        return None
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def period(start: datetime, end: datetime, **filters) -> dict:
    return {"from": start, "to": end, **filters}


def prorated_spend(monthly_cost: Decimal | None, start: datetime, end: datetime) -> Decimal | None:
    """A source's monthly cost prorated over [start, end) (days / 30.4375); None: no cost recorded."""
    if monthly_cost is None:
        return None
    months = Decimal(str((end - start).total_seconds())) / Decimal(86400) / DAYS_PER_MONTH
    return Decimal(monthly_cost) * months
