"""Monthly lead counts: the cohort figures of the funnel, sources, coordinators and lost-reasons
reports summed from a few thousand rows instead of counting every lead of a long range.

Why months, not days: at 100,000 leads over two years a clinic gets ~140 leads a day, spread over
its coordinators, sources and stages, so a row per (day, coordinator, source, stage) holds about one
lead and would be as many rows as leads. Per month the same key holds ~30, and a range's partial
months at either end are counted from the leads themselves (at most two months of them).

One row per (clinic, month of capture (UTC), owner, source, reached stage, lost reason) counts the
clinic's non-deleted leads there: all, converted, lost, contacted within 5 minutes. "Reached stage"
is the furthest non-lost stage (coalesce(furthest_stage, pipeline_stage), as the funnel reads it).
Nullable parts of the key are stored as 0 / '' so the key can be a primary key (upsert target).

Kept right by a session hook, not by each write path: every change of a lead goes through the ORM,
and the hook diffs each flushed lead's key and counts (before: from attribute history; after: the
flushed state). The deltas of a transaction are summed and written at commit as one multi-row
upsert, so a lead capture costs one statement however many flushes it takes. The two bulk
UPDATEs of leads (first contact in rollups.py, furthest stage after a reorder) call in directly, and
so does lead capture, whose rows skip the ORM (`add_new_lead`, in capture's own batch).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, attributes, mapped_column

from app.db import Base, writes
from app.leads.models import Lead, LeadStatus

SPEED_TO_LEAD_SECONDS = 300
DELTAS = "analytics_month_deltas"  # session.info key: the transaction's pending Counter


class LeadMonth(Base):
    __tablename__ = "analytics_lead_months"

    clinic_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    coordinator_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)  # 0: none
    source_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)  # 0: none
    reached_stage: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    lost_reason: Mapped[str] = mapped_column(sa.String(32), primary_key=True)  # '': none
    leads: Mapped[int] = mapped_column(sa.Integer, default=0)
    converted: Mapped[int] = mapped_column(sa.Integer, default=0)
    lost: Mapped[int] = mapped_column(sa.Integer, default=0)
    within_5_min: Mapped[int] = mapped_column(sa.Integer, default=0)


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


def current_facts(lead: Lead) -> dict:
    return {name: getattr(lead, name) for name in FACT_ATTRS}


def previous_facts(lead: Lead) -> dict:
    """The lead's facts as last stored (before this flush's changes). The attributes keep their
    old value on set (active history, see `install`), so a changed one has it in `deleted`."""
    facts = {}
    for name in FACT_ATTRS:
        history = attributes.get_history(lead, name)
        if history.has_changes():
            facts[name] = history.deleted[0] if history.deleted else None
        else:
            facts[name] = getattr(lead, name)
    return facts


def _pending(session: Session) -> Counter:
    """The deltas of the innermost open transaction (a savepoint's are dropped if it rolls back)."""
    by_transaction = session.info.setdefault(DELTAS, {})
    return by_transaction.setdefault(_innermost(session), Counter())


def _innermost(session: Session):
    return session.get_nested_transaction() or session.get_transaction()


def add_change(session: Session, before: dict | None, after: dict | None) -> None:
    """Queue the move of one lead's counts from `before` facts to `after` facts (None: nowhere)."""
    pending = _pending(session)
    for facts, sign in ((before, -1), (after, 1)):
        found = contribution(facts) if facts is not None else None
        if found is None:
            continue
        key, counts = found
        for name, value in zip(COUNTS, counts, strict=True):
            if value:
                pending[(key, name)] += sign * value


# --- session hooks -----------------------------------------------------------------------------


def _after_flush(session: Session, flush_context) -> None:
    for lead in session.new:
        if isinstance(lead, Lead):
            add_change(session, None, current_facts(lead))
    for lead in session.dirty:
        if isinstance(lead, Lead) and session.is_modified(lead, include_collections=False):
            add_change(session, previous_facts(lead), current_facts(lead))
    for lead in session.deleted:
        if isinstance(lead, Lead):
            add_change(session, previous_facts(lead), None)


def _before_commit(session: Session) -> None:
    """A savepoint's release hands its deltas to the enclosing transaction; the outermost commit
    writes them."""
    session.flush()  # the last changes' deltas, before they are handed on or written
    transaction = _innermost(session)
    by_transaction = session.info.get(DELTAS, {})
    deltas = by_transaction.pop(transaction, None)
    if not deltas:
        return
    if transaction.nested:
        enclosing = transaction.parent
        while enclosing.parent is not None and not enclosing.nested:
            enclosing = enclosing.parent
        by_transaction.setdefault(enclosing, Counter()).update(deltas)
    else:
        write(session, deltas)


def _after_transaction_end(session: Session, transaction) -> None:
    session.info.get(DELTAS, {}).pop(transaction, None)  # rolled back (a committed one was taken)


def write(session: Session, deltas: Counter) -> None:
    """The summed deltas as one multi-row upsert (summed per key first: an upsert may touch a row
    once; sorted: concurrent writers lock rows in the same order)."""
    rows: dict[tuple, dict] = {}
    for (key, name), value in deltas.items():
        if value:
            rows.setdefault(key, dict.fromkeys(COUNTS, 0))[name] = value
    if not rows:
        return
    values = [dict(zip(KEY, key, strict=True)) | counts for key, counts in sorted(rows.items())]
    table = LeadMonth.__table__
    insert = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(table)
    stmt = insert.values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(KEY), set_={name: table.c[name] + stmt.excluded[name] for name in COUNTS}
    )
    session.execute(stmt)


def _keep_old_value(target, value, oldvalue, initiator):
    return value


def _upsert_one(dialect: str) -> sa.Insert:
    table = LeadMonth.__table__
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    return insert.on_conflict_do_update(
        index_elements=list(KEY), set_={name: table.c[name] + insert.excluded[name] for name in COUNTS}
    )


_UPSERT_ONE = {"postgresql": _upsert_one("postgresql"), "sqlite": _upsert_one("sqlite")}


def add_new_lead(*, session: Session, lead: Lead) -> None:
    """Count a new lead written without the ORM's flush (lead capture: `writes.add`), in the same
    unit of work: the flush hooks never see such a lead."""
    found = contribution(current_facts(lead))
    if found is None:
        return
    key, counts = found
    writes.upsert(
        session, _UPSERT_ONE, dict(zip(KEY, key, strict=True)) | dict(zip(COUNTS, counts, strict=True))
    )


def install() -> None:
    """Register the hooks on every session, and active history on the lead's fact attributes (an
    attribute set while unloaded would otherwise not know what it was). Idempotent."""
    for name, hook in (
        ("after_flush", _after_flush),
        ("before_commit", _before_commit),
        ("after_transaction_end", _after_transaction_end),
    ):
        if not sa.event.contains(Session, name, hook):
            sa.event.listen(Session, name, hook)
    for name in FACT_ATTRS:
        attribute = getattr(Lead, name)
        if not sa.event.contains(attribute, "set", _keep_old_value):
            sa.event.listen(attribute, "set", _keep_old_value, active_history=True, retval=True)


# --- recomputing -------------------------------------------------------------------------------


def _recompute_select(dialect: str, clinic_id: int | None = None):
    """SQL: the rows of the table computed from the leads (for the backfill and the check)."""
    from app.analytics.queries import utc_month
    from app.analytics.rollups import seconds_between

    month = utc_month(dialect, Lead.created_at)
    seconds = seconds_between(dialect, Lead.first_outbound_contact_at, Lead.created_at)
    columns = [
        Lead.clinic_id.label("clinic_id"),
        month.label("month"),
        sa.func.coalesce(Lead.assigned_to_id, 0).label("coordinator_id"),
        sa.func.coalesce(Lead.source_id, 0).label("source_id"),
        sa.func.coalesce(Lead.furthest_stage, Lead.pipeline_stage, "").label("reached_stage"),
        sa.func.coalesce(Lead.lost_reason, "").label("lost_reason"),
    ]
    stmt = sa.select(
        *columns,
        sa.func.count().label("leads"),
        sa.func.count(sa.case((Lead.status == LeadStatus.CONVERTED, 1))).label("converted"),
        sa.func.count(sa.case((Lead.status == LeadStatus.LOST, 1))).label("lost"),
        sa.func.count(sa.case((sa.func.round(seconds) <= SPEED_TO_LEAD_SECONDS, 1))).label("within_5_min"),
    ).where(Lead.deleted_at.is_(None))
    if clinic_id is not None:
        stmt = stmt.where(Lead.clinic_id == clinic_id)
    return stmt.group_by(*columns)


def rebuild(connection, clinic_id: int | None = None) -> None:
    """The table recomputed from the leads (all clinics, or one)."""
    table = LeadMonth.__table__
    delete = table.delete()
    if clinic_id is not None:
        delete = delete.where(table.c.clinic_id == clinic_id)
    connection.execute(delete)
    select = _recompute_select(connection.dialect.name, clinic_id)
    connection.execute(table.insert().from_select([*KEY, *COUNTS], select))


def recomputed(connection, clinic_id: int | None = None) -> dict:
    """{key: counts} computed from the leads (tests compare the table with it)."""
    out = {}
    for row in connection.execute(_recompute_select(connection.dialect.name, clinic_id)):
        key = tuple(row[:6])
        out[key] = tuple(row[6:])
    return out


def forget_pending(session: Session, clinic_id: int) -> None:
    """Drop the queued deltas of a clinic whose rows were just rebuilt from the leads."""
    for deltas in session.info.get(DELTAS, {}).values():
        for entry in [e for e in deltas if e[0][0] == clinic_id]:
            del deltas[entry]


# --- reading -----------------------------------------------------------------------------------

DIMENSIONS = ("coordinator_id", "source_id", "reached_stage", "lost_reason")


def _lead_dimension(name: str):
    return {
        "coordinator_id": Lead.assigned_to_id,
        "source_id": Lead.source_id,
        "reached_stage": sa.func.coalesce(Lead.furthest_stage, Lead.pipeline_stage),
        "lost_reason": Lead.lost_reason,
    }[name]


def cohort_counts(
    session: Session, clinic_id: int, start: datetime, end: datetime, coordinator_id, source_id, by: tuple
) -> dict[tuple, dict]:
    """{(dimension values...): {leads, converted, lost, within_5_min}} of the cohort (the clinic's
    non-deleted leads captured in [start, end), optionally one owner's and one source's), grouped by
    the dimensions `by` (DIMENSIONS). The whole months of the range come from the monthly rows, the
    partial ones at its ends from the leads. Groups with no lead are left out."""
    totals: dict[tuple, dict] = {}
    args = (session, clinic_id, start, end, coordinator_id, source_id, by)
    for group, counts in [*_from_months(*args), *_from_leads(*args)]:
        into = totals.setdefault(group, dict.fromkeys(COUNTS, 0))
        for name, value in zip(COUNTS, counts, strict=True):
            into[name] += value or 0
    return {group: counts for group, counts in totals.items() if counts["leads"]}


def _from_months(session, clinic_id, start, end, coordinator_id, source_id, by) -> list:
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


def _from_leads(session, clinic_id, start, end, coordinator_id, source_id, by) -> list:
    from app.analytics.rollups import seconds_between

    months = full_months(start, end)
    if months is None:
        ranges = [(start, end)]
    else:
        ranges = [(start, month_start(months[0])), (month_start(months[1]), end)]
    ranges = [(a, b) for a, b in ranges if a < b]
    if not ranges:
        return []
    seconds = seconds_between(
        session.get_bind().dialect.name, Lead.first_outbound_contact_at, Lead.created_at
    )
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


install()  # importing the module (app.domains does) wires the hooks, as the other domains' handlers
