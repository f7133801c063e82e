"""The task export: the team view's filters as CSV, streamed from a server-side cursor, audited.

A task's description and outcome notes may hold what a patient said: they are written only for a
reader with `lead:phi` (the field policy of app/platform/phi_policy.py, as the lead export).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa

from app.domains.leads.export import FETCH_ROWS, cell
from app.domains.tasks import team
from app.domains.tasks.models import LeadTask
from app.platform import phi_policy
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.roles import Actor

COLUMNS = (
    "id",
    "lead_id",
    "title",
    "type",
    "priority",
    "status",
    "assigned_to_id",
    "due_at",
    "reminder_at",
    "completed_at",
    "completed_by",
    "outcome",
    "escalated_at",
    "created_at",
    "updated_at",
)


def start(*, session: UnitOfWork, actor: Actor, filters: dict, now: datetime) -> tuple[str, ...]:
    """Audit the export and return its columns."""
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="task.export",
            subject_type="task",
            subject_id=None,
            after={"filters": {k: str(v) for k, v in filters.items()}, "phi": phi_policy.may_read_phi(actor)},
            at=now,
        ),
    )
    return COLUMNS + phi_policy.fields_for(actor, "task", phi_policy.TASK_FIELDS)


def rows(
    *, session: UnitOfWork, actor: Actor, filters: dict, sort: str, columns: tuple[str, ...], now: datetime
) -> Iterator[list]:
    """The matching tasks' `columns` in `sort` order, fetched FETCH_ROWS at a time."""
    stmt = (
        sa.select(*[getattr(LeadTask, name) for name in columns])
        .where(*team.conditions(clinic_id=actor.clinic_id, filters=filters, now=now))
        .order_by(*team.order_by(sort))
        .execution_options(yield_per=FETCH_ROWS)
    )
    for row in session.execute(stmt):
        yield [cell(value) for value in row]
