"""The building blocks every analytics report shares: the cohort's conditions, percentiles in SQL,
and the rounding of counts, ratios and money (one place, so two reports never round differently)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from app.domains.analytics import queries
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork

DAYS_PER_MONTH = Decimal("30.4375")  # the mean month (365.25 / 12)


@dataclass(frozen=True)
class Cohort:
    """What a report counts: the clinic's leads captured in [start, end) (not deleted), narrowed to
    one owner (`coordinator_id`) and one source when given."""

    clinic_id: int
    start: datetime
    end: datetime
    coordinator_id: int | None = None
    source_id: int | None = None

    def parts(self) -> tuple:
        """(clinic_id, start, end, coordinator_id, source_id), for the queries that take them apart."""
        return self.clinic_id, self.start, self.end, self.coordinator_id, self.source_id


def seconds(session: UnitOfWork, later, earlier):
    """SQL: seconds from `earlier` to `later`."""
    return queries.seconds_between(session, later, earlier)


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


def of_leads(stmt, lead_id, *, owner_id=None, source_id=None):
    """`stmt` narrowed to the rows (`lead_id`: their lead's id column) whose lead the owner holds now
    and came from the source, each when given; joined to the leads only then."""
    if owner_id is None and source_id is None:
        return stmt
    stmt = stmt.join(Lead, Lead.id == lead_id)
    if owner_id is not None:
        stmt = stmt.where(Lead.assigned_to_id == owner_id)
    if source_id is not None:
        stmt = stmt.where(Lead.source_id == source_id)
    return stmt


def percentiles(session: UnitOfWork, source, value_col, group_col=None, places: int = 2) -> dict:
    """{group: (median, p90)} of `value_col` over the rows of `source`, in SQL (see
    queries.percentile_rows), rounded."""
    rows = queries.percentile_rows(session, source, value_col, group_col)
    return {g: (num(med, places), num(p90, places)) for g, med, p90 in rows}


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
