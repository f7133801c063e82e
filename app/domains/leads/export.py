"""The lead export: the lead list's filters as CSV, streamed from a server-side cursor, audited.

Protected (PHI) columns — the patient's name, birth date, relationship and interest, insurance,
address and notes — are written only for a reader with `lead:phi` (the field policy of
app/platform/phi_policy.py, as every response); front desk gets the contact columns only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import sqlalchemy as sa

from app.domains.leads import listing
from app.domains.leads.models import Lead
from app.platform import phi_policy
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.roles import Actor

CONTACT_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone_alt",
    "preferred_contact",
    "status",
    "pipeline_stage",
    "source_id",
    "source_campaign",
    "assigned_to_id",
    "stage_entered_at",
    "converted_at",
    "lost_at",
    "lost_reason",
    "priority",
    "created_at",
    "updated_at",
)
FETCH_ROWS = 1000  # rows per round trip of the server-side cursor


def columns_for(actor: Actor) -> tuple[str, ...]:
    """The contact columns, then the PHI columns `actor` may read (app/platform/phi_policy.py)."""
    return CONTACT_COLUMNS + phi_policy.fields_for(actor, "lead", phi_policy.LEAD_FIELDS)


def start(*, session: UnitOfWork, actor: Actor, filters: dict, now: datetime) -> tuple[str, ...]:
    """Audit the export (who, which filters, whether PHI went out) and return its columns."""
    columns = columns_for(actor)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead.export",
            subject_type="lead",
            subject_id=None,
            after={"filters": {k: str(v) for k, v in filters.items()}, "phi": phi_policy.may_read_phi(actor)},
            at=now,
        ),
    )
    return columns


def cell(value):
    """A database value as CSV text: timestamps in ISO 8601, lists joined with "; "."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return value


def rows(
    *, session: UnitOfWork, actor: Actor, filters: dict, sort: str, columns: tuple[str, ...]
) -> Iterator[list]:
    """The matching leads' `columns`, in `sort` order, fetched FETCH_ROWS at a time."""
    conditions = listing.list_conditions(session=session, actor=actor, filters=filters)
    stmt = (
        sa.select(*[getattr(Lead, name) for name in columns])
        .where(*conditions)
        .order_by(*listing.list_order(sort))
        .execution_options(yield_per=FETCH_ROWS)
    )
    for row in session.execute(stmt):
        yield [cell(value) for value in row]
