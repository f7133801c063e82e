"""Monthly lead counts: the cohort figures of the funnel, sources, coordinators and lost-reasons
reports summed from a few thousand rows instead of counting every lead of a long range.

Why months, not days: at 100,000 leads over two years a clinic gets ~140 leads a day, spread over
its coordinators, sources and stages, so a row per (day, coordinator, source, stage) holds about one
lead and would be as many rows as leads. Per month the same key holds ~30, and a range's partial
months at either end are counted from the leads themselves (at most two months of them).

One row per (clinic, month of capture (UTC), owner, source, reached stage, lost reason) counts the
clinic's non-deleted leads there: all, converted, lost, contacted within 5 minutes. "Reached stage"
is the furthest non-lost stage (coalesce(furthest_stage, pipeline_stage), as the funnel reads it).

Kept by a consumer of the outbox (`on_events`, in AFTER_EVENTS of app/handlers.py), not by the write paths:
for each lead the processed events name, a background job (`analytics.recount`) runs `recount`,
which compares the lead's current facts with where it was last counted (`CountedLead`) and moves
its counts by the difference. Counting the lead from its row, not from the events, makes replays,
events processed out of order and historical imports exact; the reports lag the writes by the
events job and the recount's delay (`background_delay_seconds`, 2 s).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from app.domains.activities.events import ActivityLogged
from app.domains.analytics import queries
from app.domains.analytics.figures import Cohort
from app.domains.analytics.models import CountedLead, LeadMonth
from app.domains.assignment.events import LeadAssigned
from app.domains.leads.events import LeadCreated, LeadDeleted, LeadUpdated
from app.domains.leads.models import Lead, LeadStatus
from app.domains.pipeline.events import LeadConverted, LeadLost, LeadStageChanged
from app.platform.db import UnitOfWork
from app.platform.events.types import Delivered
from app.platform.scheduling import service as scheduling

SPEED_TO_LEAD_SECONDS = queries.SPEED_TO_LEAD_SECONDS
COUNTS = ("leads", "converted", "lost", "within_5_min")
KEY = ("clinic_id", "month", "coordinator_id", "source_id", "reached_stage", "lost_reason")
FACT_ATTRS = (
    "clinic_id",
    "created_at",
    "deleted_at",
    "assigned_to_id",
    "source_id",
    "furthest_stage",
    "pipeline_stage",
    "lost_reason",
    "status",
    "first_outbound_contact_at",
)
# The events after which a lead may count elsewhere (an activity: its first contact may be earlier).
RECOUNTED_BY = frozenset(
    event.NAME
    for event in (
        LeadCreated,
        LeadUpdated,
        LeadDeleted,
        LeadStageChanged,
        LeadAssigned,
        LeadConverted,
        LeadLost,
        ActivityLogged,
    )
)


# --- month arithmetic --------------------------------------------------------------------------


def month_of(at: datetime) -> date:
    at = at.astimezone(UTC) if at.tzinfo is not None else at
    return date(at.year, at.month, 1)


def month_start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def full_months(start: datetime, end: datetime) -> tuple[date, date] | None:
    """[first, stop): the whole months inside [start, end), or None when there is none."""
    first = month_of(start)
    if month_start(first) < start:
        first = next_month(first)
    stop = month_of(end)
    return (first, stop) if first < stop else None


# --- a lead's contribution ---------------------------------------------------------------------


def within_5_min(created_at: datetime | None, first_contact: datetime | None) -> bool:
    if created_at is None or first_contact is None:
        return False
    return round((first_contact - created_at).total_seconds()) <= SPEED_TO_LEAD_SECONDS


def contribution(facts: dict) -> tuple[tuple, tuple] | None:
    """(key, counts) of one lead's facts, or None when it counts nowhere (deleted, not yet dated)."""
    if facts["deleted_at"] is not None or facts["created_at"] is None or facts["clinic_id"] is None:
        return None
    key = (
        facts["clinic_id"],
        month_of(facts["created_at"]),
        facts["assigned_to_id"] or 0,
        facts["source_id"] or 0,
        facts["furthest_stage"] or facts["pipeline_stage"] or "",
        facts["lost_reason"] or "",
    )
    counts = (
        1,
        int(facts["status"] == LeadStatus.CONVERTED),
        int(facts["status"] == LeadStatus.LOST),
        int(within_5_min(facts["created_at"], facts["first_outbound_contact_at"])),
    )
    return key, counts


# --- counting (the events consumer) -------------------------------------------------------------

_COUNTED = CountedLead.__table__
_FACT_COLUMNS = [Lead.id, *(getattr(Lead, name) for name in FACT_ATTRS)]
_UPDATE_COUNTED = (
    sa.update(_COUNTED)
    .where(_COUNTED.c.lead_id == sa.bindparam("b_lead_id"))
    .values({name: sa.bindparam(f"b_{name}") for name in (*KEY, *COUNTS[1:])})
)


RECOUNT_KIND = "analytics.recount"


def on_events(*, session: UnitOfWork, events: list[Delivered], now: datetime, settings) -> None:
    """The consumer: every lead the processed events name is recounted by a background job (once
    per lead however many events), due `background_delay_seconds` after them, so a new lead's
    realtime job does none of it and the leads of those seconds are recounted in one pass.
    `settings`: the engine's, bound by app/bootstrap.py."""
    lead_ids = sorted({e.subject_id for e in events if e.subject_type == "lead" and e.type in RECOUNTED_BY})
    if not lead_ids:
        return
    first, delay = events[0], timedelta(seconds=settings.background_delay_seconds)
    recount = scheduling.Job(
        kind=RECOUNT_KIND, due_at=now + delay, dedupe_key=f"recount:{first.id}", now=now,
        clinic_id=first.clinic_id, subject_type="lead", subject_id=lead_ids[0],
        payload={"lead_ids": lead_ids}, origin={"event_id": first.id},
    )  # fmt: skip
    session.schedule(recount)


def recount_jobs(*, session: UnitOfWork, jobs: list, now: datetime) -> None:
    """The job handler (a kind run `together`): the leads of the jobs a drainer runs in one
    transaction, recounted in one sorted pass (two drainers lock the counts in the same order)."""
    recount(session=session, lead_ids=[lead_id for job in jobs for lead_id in job.payload["lead_ids"]])


def recount(*, session: UnitOfWork, lead_ids: Iterable[int]) -> None:
    """Move each lead's counts from where it was last counted to where its facts put it now."""
    ids = sorted(set(lead_ids))  # sorted: concurrent consumers lock the rows in the same order
    if not ids:
        return
    counted = {
        row.lead_id: _counted_contribution(row)
        for row in session.execute(
            sa.select(_COUNTED)
            .where(_COUNTED.c.lead_id.in_(ids))
            .order_by(_COUNTED.c.lead_id)
            .with_for_update()
        )
    }
    # Read after the lock: a consumer that held it has committed, and its lead state is visible.
    leads = {
        row.id: row._mapping for row in session.execute(sa.select(*_FACT_COLUMNS).where(Lead.id.in_(ids)))
    }
    facts = {lead_id: contribution(row) for lead_id, row in leads.items()}
    first_counts, changed, deltas = [], [], Counter()
    for lead_id in ids:
        after = facts.get(lead_id)
        if lead_id not in counted:
            if lead_id in leads:  # a lead gone without ever being counted has nothing to undo
                first_counts.append(_counted_row(lead_id, leads[lead_id]["clinic_id"], after))
        elif counted[lead_id] != after:
            clinic_id = (after or counted[lead_id])[0][0]
            changed.append(_counted_row(lead_id, clinic_id, after))
            _add_change(deltas, counted[lead_id], after)
    if first_counts:
        inserted = queries.insert_counted_if_absent(session, first_counts)
        for row in first_counts:
            if row["lead_id"] in inserted:
                _add_change(deltas, None, facts[row["lead_id"]])
        raced = [row["lead_id"] for row in first_counts if row["lead_id"] not in inserted]
        if raced:  # another consumer counted them first (and has committed): from its counts, then
            recount(session=session, lead_ids=raced)
    if changed:
        session.execute(_UPDATE_COUNTED, [{f"b_{k}": v for k, v in row.items()} for row in changed])
    write(session, deltas)


def _counted_contribution(row) -> tuple[tuple, tuple] | None:
    if row.month is None:
        return None
    key = tuple(getattr(row, name) for name in KEY)
    return key, (1, row.converted, row.lost, row.within_5_min)


def _counted_row(lead_id: int, clinic_id: int, found: tuple[tuple, tuple] | None) -> dict:
    """The `CountedLead` values of a lead counted at `found` (None: nowhere)."""
    if found is None:
        return {"lead_id": lead_id, "clinic_id": clinic_id, "month": None, "coordinator_id": 0,
                "source_id": 0, "reached_stage": "", "lost_reason": "", "converted": 0, "lost": 0,
                "within_5_min": 0}  # fmt: skip
    key, counts = found
    return {
        "lead_id": lead_id,
        **dict(zip(KEY, key, strict=True)),
        **dict(zip(COUNTS[1:], counts[1:], strict=True)),
    }


def _add_change(deltas: Counter, before: tuple | None, after: tuple | None) -> None:
    """Queue the move of one lead's counts from `before` to `after` (None: nowhere)."""
    for found, sign in ((before, -1), (after, 1)):
        if found is None:
            continue
        key, counts = found
        for name, value in zip(COUNTS, counts, strict=True):
            if value:
                deltas[(key, name)] += sign * value


def write(session: UnitOfWork, deltas: Counter) -> None:
    """The summed deltas, one upsert per month row (summed per key first; sorted: concurrent writers
    lock rows in the same order)."""
    rows: dict[tuple, dict] = {}
    for (key, name), value in deltas.items():
        if value:
            rows.setdefault(key, dict.fromkeys(COUNTS, 0))[name] = value
    if rows:
        queries.add_to_months(
            session, [dict(zip(KEY, key, strict=True)) | counts for key, counts in sorted(rows.items())]
        )


# --- recomputing -------------------------------------------------------------------------------


def _lead_columns(bind) -> tuple[list, list]:
    """SQL: a lead's key columns and its 0/1 counts (converted, lost, within 5 minutes)."""
    month = queries.utc_month(bind, Lead.created_at)
    seconds = Lead.speed_to_lead_seconds  # kept on the lead (leads.models.kept_spans)
    key = [
        Lead.clinic_id.label("clinic_id"),
        month.label("month"),
        sa.func.coalesce(Lead.assigned_to_id, 0).label("coordinator_id"),
        sa.func.coalesce(Lead.source_id, 0).label("source_id"),
        sa.func.coalesce(Lead.furthest_stage, Lead.pipeline_stage, "").label("reached_stage"),
        sa.func.coalesce(Lead.lost_reason, "").label("lost_reason"),
    ]
    flags = [
        sa.case((Lead.status == LeadStatus.CONVERTED, 1), else_=0).label("converted"),
        sa.case((Lead.status == LeadStatus.LOST, 1), else_=0).label("lost"),
        sa.case((sa.func.round(seconds) <= SPEED_TO_LEAD_SECONDS, 1), else_=0).label("within_5_min"),
    ]
    return key, flags


def _recompute_select(bind, clinic_id: int | None = None):
    """SQL: the rows of the table computed from the leads (the consistency check)."""
    key, flags = _lead_columns(bind)
    stmt = sa.select(*key, sa.func.count().label("leads"), *(sa.func.sum(f) for f in flags))
    stmt = stmt.where(Lead.deleted_at.is_(None))
    if clinic_id is not None:
        stmt = stmt.where(Lead.clinic_id == clinic_id)
    return stmt.group_by(*key)


def rebuild(connection, clinic_id: int | None = None) -> None:
    """The tables recomputed from the leads (all clinics, or one): where each lead counts, then the
    months summed from that (so the two agree even while leads change meanwhile)."""
    key, flags = _lead_columns(connection)
    for table in (_COUNTED, LeadMonth.__table__):
        delete = table.delete()
        if clinic_id is not None:
            delete = delete.where(table.c.clinic_id == clinic_id)
        connection.execute(delete)
    per_lead = sa.select(Lead.id, *key, *flags).where(Lead.deleted_at.is_(None))
    sums = sa.select(
        *(_COUNTED.c[name] for name in KEY),
        sa.func.count(),
        *(sa.func.sum(_COUNTED.c[name]) for name in COUNTS[1:]),
    ).where(_COUNTED.c.month.is_not(None))
    if clinic_id is not None:
        per_lead = per_lead.where(Lead.clinic_id == clinic_id)
        sums = sums.where(_COUNTED.c.clinic_id == clinic_id)
    connection.execute(_COUNTED.insert().from_select(["lead_id", *KEY, *COUNTS[1:]], per_lead))
    sums = sums.group_by(*(_COUNTED.c[name] for name in KEY))
    connection.execute(LeadMonth.__table__.insert().from_select([*KEY, *COUNTS], sums))


def recomputed(connection, clinic_id: int | None = None) -> dict:
    """{key: counts} computed from the leads (tests compare the table with it)."""
    out = {}
    for row in connection.execute(_recompute_select(connection, clinic_id)):
        out[tuple(row[:6])] = tuple(int(v) for v in row[6:])
    return out


# --- reading -----------------------------------------------------------------------------------

DIMENSIONS = ("coordinator_id", "source_id", "reached_stage", "lost_reason")


def _lead_dimension(name: str):
    return {
        "coordinator_id": Lead.assigned_to_id,
        "source_id": Lead.source_id,
        "reached_stage": sa.func.coalesce(Lead.furthest_stage, Lead.pipeline_stage),
        "lost_reason": Lead.lost_reason,
    }[name]


def cohort_counts(session: UnitOfWork, cohort: Cohort, by: tuple) -> dict[tuple, dict]:
    """{(dimension values...): {leads, converted, lost, within_5_min}} of the cohort (the clinic's
    non-deleted leads captured in [start, end), optionally one owner's and one source's), grouped by
    the dimensions `by` (DIMENSIONS). The whole months of the range come from the monthly rows, the
    partial ones at its ends from the leads. Groups with no lead are left out."""
    totals: dict[tuple, dict] = {}
    for group, counts in [*_from_months(session, cohort, by), *_from_leads(session, cohort, by)]:
        into = totals.setdefault(group, dict.fromkeys(COUNTS, 0))
        for name, value in zip(COUNTS, counts, strict=True):
            into[name] += value or 0
    return {group: counts for group, counts in totals.items() if counts["leads"]}


def _from_months(session: UnitOfWork, cohort: Cohort, by: tuple) -> list:
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    months = full_months(start, end)
    if months is None:
        return []
    table = LeadMonth.__table__
    stmt = sa.select(*(table.c[d] for d in by), *(sa.func.sum(table.c[n]) for n in COUNTS)).where(
        table.c.clinic_id == clinic_id, table.c.month >= months[0], table.c.month < months[1]
    )
    if coordinator_id is not None:
        stmt = stmt.where(table.c.coordinator_id == coordinator_id)
    if source_id is not None:
        stmt = stmt.where(table.c.source_id == source_id)
    stmt = stmt.group_by(*(table.c[d] for d in by))
    # Stored 0 / '' stand for "none", as the leads' nulls do.
    return [(tuple(v or None for v in row[: len(by)]), row[len(by) :]) for row in session.execute(stmt)]


def _from_leads(session: UnitOfWork, cohort: Cohort, by: tuple) -> list:
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    months = full_months(start, end)
    if months is None:
        ranges = [(start, end)]
    else:
        ranges = [(start, month_start(months[0])), (month_start(months[1]), end)]
    ranges = [(a, b) for a, b in ranges if a < b]
    if not ranges:
        return []
    seconds = Lead.speed_to_lead_seconds  # kept on the lead (leads.models.kept_spans)
    dims = [_lead_dimension(d) for d in by]
    counts = [
        sa.func.count(),
        sa.func.count(sa.case((Lead.status == LeadStatus.CONVERTED, 1))),
        sa.func.count(sa.case((Lead.status == LeadStatus.LOST, 1))),
        sa.func.count(sa.case((sa.func.round(seconds) <= SPEED_TO_LEAD_SECONDS, 1))),
    ]
    rows = []
    for a, b in ranges:  # one statement per end: an OR of the two ranges is planned as a table scan
        stmt = sa.select(*dims, *counts).where(
            Lead.clinic_id == clinic_id, Lead.deleted_at.is_(None), Lead.created_at >= a, Lead.created_at < b
        )
        if coordinator_id is not None:
            stmt = stmt.where(Lead.assigned_to_id == coordinator_id)
        if source_id is not None:
            stmt = stmt.where(Lead.source_id == source_id)
        stmt = stmt.group_by(*dims)
        rows += [(tuple(v or None for v in row[: len(by)]), row[len(by) :]) for row in session.execute(stmt)]
    return rows
