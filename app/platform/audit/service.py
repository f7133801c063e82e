"""Write and read the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.platform.audit.models import AuditEvent
from app.platform.db import new_row, page_of
from app.platform.paging import PageRequest

SYSTEM = "system"


def record(
    *,
    session: Session,
    clinic_id: int,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: int | str | None,
    at: datetime,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Add one audit event to the caller's unit of work."""
    event = new_row(
        AuditEvent,
        **fields(
            clinic_id=clinic_id,
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            at=at,
            before=before,
            after=after,
        ),
    )
    return session.add(event)


def fields(
    *,
    clinic_id: int,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: int | str | None,
    at: datetime,
    before: dict | None = None,
    after: dict | None = None,
) -> dict:
    """The columns of one audit event (see `record`)."""
    return {
        "clinic_id": clinic_id,
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": None if subject_id is None else str(subject_id),
        "before": before,
        "after": after,
        "at": at,
    }


def changes(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the keys whose values differ, for a compact before/after."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def list_events(
    *,
    session: Session,
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
        page=paging.page,
        page_size=paging.page_size,
    )
    return rows, total
