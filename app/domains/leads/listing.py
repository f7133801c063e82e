"""Listing leads: the filters, search and sort of GET /api/leads (and the exports that share them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.auth import service as auth
from app.domains.leads import patients, rules
from app.domains.leads.models import (
    CONTACT_SEARCH,
    OPEN_STATUSES,
    PATIENT_SEARCH,
    Lead,
)
from app.platform import phi_policy
from app.platform.audit import service as audit
from app.platform.db import PageRequest, UnitOfWork, page_of
from app.platform.db.search import search_text
from app.platform.errors import ValidationFailed
from app.platform.roles import Actor


@dataclass(frozen=True)
class ListExtensions:
    """What higher domains add to the lead list, which the leads domain cannot import (they name
    models of the domains above it): the engine's (app/bootstrap.py, from LEAD_LIST_FILTERS and
    LEAD_FLAGS of app/handlers.py).

    `filters`: a filter's name in the query -> a function from its value to conditions on Lead (e.g.
    automation's next_step=none, "no next step planned"). `flags`: a flag of a lead's answer -> which
    of these lead ids hold it (`in_sequence`: an active enrollment), one query a page.

    Read through the unit's Database (`session.database.wiring.lead_list`): a lead's answer carries
    its flags wherever it is read (a lead, the list, the board, the inbox), many layers under the
    views, and the Database, built with the engine, carries them there."""

    filters: Mapping[str, Callable[[object], list]]
    flags: Mapping[str, Callable[[UnitOfWork, list[int]], set[int]]]


def _extensions(session: UnitOfWork) -> ListExtensions:
    return session.database.wiring.lead_list


def with_flags(session: UnitOfWork, leads: list[Lead]) -> list[Lead]:
    """`leads` with the flags higher domains answer set on them, and their patients, as their answer
    shows them."""
    ids = [lead.id for lead in with_patients(session, leads)]
    for name, holders in _extensions(session).flags.items():
        holding = holders(session, ids) if ids else set()
        for lead in leads:
            setattr(lead, name, lead.id in holding)  # a plain attribute: not a column
    return leads


def with_patients(session: UnitOfWork, leads: list[Lead]) -> list[Lead]:
    """`leads` with their patients set on them (`patients`, as the answer lists them), one query."""
    further = patients.further_of(session, [lead.id for lead in leads])
    for lead in leads:
        lead.patients = patients.listed(lead, further.get(lead.id, []))  # a plain attribute: not a column
    return leads


def _added_conditions(session: UnitOfWork, filters: dict) -> list:
    added = _extensions(session).filters
    return [c for name, conditions in added.items() for c in conditions(filters.get(name))]


def _query_error(field: str, message: str) -> ValidationFailed:
    """A 422 about a query parameter, reported where webargs reports its own: errors.query."""
    error = ValidationFailed(field, message)
    error.errors = {"query": {field: [message]}}
    return error


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def list_leads(
    *,
    session: UnitOfWork,
    actor: Actor,
    filters: dict,
    sort: str,
    paging: PageRequest,
    now: datetime,
) -> tuple[list[Lead], int]:
    """The clinic's live leads, filtered, sorted and paged; the list call is audited once.

    Filters: see `list_conditions`, and those a higher domain adds (`ListExtensions.filters`).
    """
    conditions = [
        *list_conditions(session=session, actor=actor, filters=filters),
        *_added_conditions(session, filters),
    ]
    order, tiebreak = list_order(sort)
    rows, total = page_of(session, Lead, conditions, order_by=(order, tiebreak), paging=paging)
    _audit_answer(session, actor, action="lead.list", filters=filters, rows=rows, now=now)
    return with_flags(session, rows), total


def search_leads(*, session: UnitOfWork, actor: Actor, q: str, limit: int, now: datetime) -> list[Lead]:
    """The first `limit` live leads whose searchable text holds `q` (the list's own `q`: the same
    fields for the same reader), newest first; audited as one search.

    No total, unlike the list: a search box asks on every pause in typing, and counting every lead
    that "41" matches is what made the list slow (docs/performance.md). Newest first walks the
    clinic's leads by creation time and stops at `limit` when nearly all match."""
    conditions = list_conditions(session=session, actor=actor, filters={"q": q})
    rows = session.scalars(
        sa.select(Lead).where(*conditions).order_by(*list_order("-created_at")).limit(limit)
    ).all()
    _audit_answer(session, actor, action="lead.search", filters={"q": q}, rows=rows, now=now)
    return with_patients(session, list(rows))


def _audit_answer(session, actor: Actor, *, action: str, filters: dict, rows, now: datetime) -> None:
    """One audit event for a listing's answer: what was asked, which leads went out, whether with PHI."""
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action=action,
            subject_type="lead",
            subject_id=None,
            after={
                "filters": {k: str(v) for k, v in filters.items() if v is not None},
                "lead_ids": [lead.id for lead in rows],
                "phi": phi_policy.may_read_phi(actor),  # whether the answer carried PHI
            },
            at=now,
        ),
    )


SORT_COLUMNS = {name: getattr(Lead, name) for name in rules.SORT_FIELDS}
# Priorities sort by urgency (normal < high < urgent), not alphabetically.
SORT_COLUMNS["priority"] = sa.case({"high": 1, "urgent": 2}, value=Lead.priority, else_=0)


def list_order(sort: str) -> tuple:
    """ORDER BY of the lead list: the sort field (a leading "-" descending), then the id."""
    column = SORT_COLUMNS[sort.lstrip("-")]
    order = column.desc() if sort.startswith("-") else column.asc()
    if column is Lead.score:  # unscored (null) leads last in both directions, on every database
        order = order.nulls_last()
    return order, (Lead.id.desc() if sort.startswith("-") else Lead.id.asc())


def list_conditions(*, session: UnitOfWork, actor: Actor, filters: dict) -> list:
    """WHERE clauses of the lead list's filters: stage (slug), status, assigned_to (user id, "me" or
    "none"), source (id), created_from / created_to (a date is a whole day in the clinic's
    timezone), priority, q (text over contact names, email and phone, and patient names for a reader with
    `lead:phi`), stale (flagged stale in either sense: over the stage's limit in this stay, or
    quiet)."""
    conditions = [Lead.clinic_id == actor.clinic_id, Lead.deleted_at.is_(None)]
    if filters.get("stale") is not None:
        flagged = sa.and_(
            Lead.status.in_(OPEN_STATUSES),
            sa.or_(Lead.stage_stale_at.is_not(None), Lead.quiet_flagged_at.is_not(None)),
        )
        conditions.append(flagged if filters["stale"] else ~flagged)
    if filters.get("stage"):
        conditions.append(Lead.pipeline_stage == filters["stage"])
    if filters.get("status"):
        conditions.append(Lead.status == filters["status"])
    if filters.get("priority"):
        conditions.append(Lead.priority == filters["priority"])
    assigned_to = filters.get("assigned_to")
    if assigned_to == "none":
        conditions.append(Lead.assigned_to_id.is_(None))
    elif assigned_to == "me":
        if actor.user_id is None:
            raise _query_error("assigned_to", "'me' needs a user; an API key is nobody")
        conditions.append(Lead.assigned_to_id == actor.user_id)
    elif assigned_to is not None:
        conditions.append(Lead.assigned_to_id == int(assigned_to))
    if filters.get("source") is not None:
        conditions.append(Lead.source_id == filters["source"])
    created_from, created_to = filters.get("created_from"), filters.get("created_to")
    if isinstance(created_from, date) or isinstance(created_to, date):
        # Only a date range needs the clinic (a day is a day in its timezone): the board does not.
        tz = ZoneInfo(auth.get_clinic(session=session, clinic_id=actor.clinic_id).timezone)
    if isinstance(created_from, datetime):
        conditions.append(Lead.created_at >= created_from)
    elif isinstance(created_from, date):
        conditions.append(Lead.created_at >= _day_start(created_from, tz))
    if isinstance(created_to, datetime):
        conditions.append(Lead.created_at <= created_to)
    elif isinstance(created_to, date):
        conditions.append(Lead.created_at < _day_start(created_to + timedelta(days=1), tz))
    q = (filters.get("q") or "").strip()
    if q:
        pattern = _like_pattern(q.lower())
        # A search is a question about the fields it matches: a patient's name answers it only for
        # a reader who may see that name (app/platform/phi_policy.py).
        matches = [search_text(Lead, CONTACT_SEARCH).like(pattern, escape="\\")]
        if phi_policy.may_read_phi(actor):
            matches.append(search_text(Lead, PATIENT_SEARCH).like(pattern, escape="\\"))
            # A family's further patients, found first (their own trigram index): the leads' query
            # then stays an OR of indexed conditions, which PostgreSQL answers from its indexes.
            named = patients.leads_named(session, clinic_id=actor.clinic_id, pattern=pattern)
            if named:
                matches.append(Lead.id.in_(named))
        digits = "".join(ch for ch in q if ch.isdigit())
        if len(digits) >= 3 and digits != q:  # "(415) 555-01" finds +14155550134
            matches.append(search_text(Lead, CONTACT_SEARCH).like(f"%{digits}%"))
        conditions.append(sa.or_(*matches))
    return conditions
