"""Write and read the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.platform.audit.models import AuditEvent
from app.platform.db import PageRequest, UnitOfWork, new_row, page_of

SYSTEM = "system"


@dataclass(frozen=True)
class AuditEntry:
    """One audit event as a service states it: in which clinic, who (`actor`, or SYSTEM) did what
    (`action`) to which subject, when, and the values before and after."""

    clinic_id: int
    actor: str
    action: str
    subject_type: str
    subject_id: int | str | None
    at: datetime
    before: dict | None = None
    after: dict | None = None

    def columns(self) -> dict:
        """The columns of its AuditEvent row (the subject's id is stored as text)."""
        return {
            "clinic_id": self.clinic_id,
            "actor": self.actor,
            "action": self.action,
            "subject_type": self.subject_type,
            "subject_id": None if self.subject_id is None else str(self.subject_id),
            "before": self.before,
            "after": self.after,
            "at": self.at,
        }


def record(session: UnitOfWork, entry: AuditEntry) -> AuditEvent:
    """Add one audit event to the caller's unit of work."""
    return session.add(new_row(AuditEvent, **entry.columns()))


def changes(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the keys whose values differ, for a compact before/after."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def list_events(
    *,
    session: UnitOfWork,
    clinic_id: int,
    subject: tuple[str, str] | None,
    actor: str | None,
    action: str | None,
    paging: PageRequest,
) -> tuple[list[AuditEvent], int]:
    """The clinic's audit events, newest first, filtered by subject, actor and action."""
    conditions = [AuditEvent.clinic_id == clinic_id]
    if subject:
        conditions += [AuditEvent.subject_type == subject[0], AuditEvent.subject_id == subject[1]]
    if actor:
        conditions.append(AuditEvent.actor == actor)
    if action:
        conditions.append(AuditEvent.action == action)
    rows, total = page_of(
        session,
        AuditEvent,
        conditions,
        order_by=(AuditEvent.at.desc(), AuditEvent.id.desc()),
        paging=paging,
    )
    return rows, total
