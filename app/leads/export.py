"""The lead export: the lead list's filters as CSV, streamed from a server-side cursor, audited.

Protected (PHI) columns — the patient's name, birth date, relationship and interest, insurance,
address and notes — are written only for roles that work with patients (treatment_coordinator,
clinic_admin, doctor); front desk and API keys get the contact columns only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.roles import Actor, Role
from app.leads import listing
from app.leads.models import Lead

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
    "created_at",
    "updated_at",
)
PHI_COLUMNS = (
    "patient_first_name",
    "patient_last_name",
    "patient_dob",
    "patient_relationship",
    "treatment_interest",
    "insurance_carrier",
    "insurance_member_id",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "notes",
    "lost_notes",
)
PHI_ROLES = frozenset({Role.TREATMENT_COORDINATOR, Role.CLINIC_ADMIN, Role.DOCTOR})
FETCH_ROWS = 1000  # rows per round trip of the server-side cursor


def may_read_phi(actor: Actor) -> bool:
    """Whether an export for `actor` carries the protected columns."""
    return actor.user_id is not None and actor.role in PHI_ROLES


def columns_for(actor: Actor) -> tuple[str, ...]:
    return CONTACT_COLUMNS + PHI_COLUMNS if may_read_phi(actor) else CONTACT_COLUMNS


def start(*, session: Session, actor: Actor, filters: dict, now: datetime) -> tuple[str, ...]:
    """Audit the export (who, which filters, whether PHI went out) and return its columns."""
    columns = columns_for(actor)
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="lead.export",
        subject_type="lead",
        subject_id=None,
        after={"filters": {k: str(v) for k, v in filters.items()}, "phi": may_read_phi(actor)},
        at=now,
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
    *, session: Session, actor: Actor, filters: dict, sort: str, columns: tuple[str, ...]
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
