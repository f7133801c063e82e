"""The clinic-wide activity feed and one activity by id: reads of PHI (notes), so each is audited."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.platform import phi_policy
from app.platform.audit import service as audit
from app.platform.db import PageRequest, UnitOfWork, page_of
from app.platform.errors import NotFound
from app.platform.roles import Actor


def _conditions(clinic_id: int, filters: dict) -> list:
    where = [LeadActivity.clinic_id == clinic_id]
    for name, column in (
        ("lead_id", LeadActivity.lead_id),
        ("direction", LeadActivity.direction),
        ("created_by", LeadActivity.created_by_id),
        ("actor", LeadActivity.actor),
    ):
        if filters.get(name) is not None:
            where.append(column == filters[name])
    if filters.get("type"):
        where.append(LeadActivity.type.in_(filters["type"]))
    if filters.get("occurred_from"):
        where.append(LeadActivity.occurred_at >= filters["occurred_from"])
    if filters.get("occurred_to"):
        where.append(LeadActivity.occurred_at < filters["occurred_to"])
    return where


def clinic_feed(
    *, session: UnitOfWork, actor: Actor, filters: dict, paging: PageRequest, now: datetime
) -> tuple[list[LeadActivity], int]:
    """The clinic's activities matching `filters`, newest first; the read is audited with its filters."""
    where = _conditions(actor.clinic_id, filters)
    rows, total = page_of(
        session,
        LeadActivity,
        where,
        order_by=(LeadActivity.occurred_at.desc(), LeadActivity.id.desc()),
        paging=paging,
    )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="activities.feed.read",
            subject_type="clinic",
            subject_id=actor.clinic_id,
            after={
                "filters": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items()},
                "page": paging.page,
                "activity_ids": [row.id for row in rows],
                "phi": phi_policy.may_read_phi(actor),  # whether the answer carried the notes
            },
            at=now,
        ),
    )
    return rows, total


def get_activity(*, session: UnitOfWork, actor: Actor, activity_id: int, now: datetime) -> LeadActivity:
    """One activity of the clinic (another clinic's is not found); the read is audited."""
    activity = session.scalar(
        sa.select(LeadActivity).where(
            LeadActivity.id == activity_id, LeadActivity.clinic_id == actor.clinic_id
        )
    )
    if activity is None:
        raise NotFound(f"activity {activity_id} not found")
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="activity.read",
            subject_type="lead",
            subject_id=activity.lead_id,
            after={"activity_id": activity.id, "phi": phi_policy.may_read_phi(actor)},
            at=now,
        ),
    )
    return activity
