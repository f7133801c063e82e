"""Finding leads by what other domains know of them: a form submission, an import's external ids,
a user's open leads and their counts."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.leads.models import (
    OPEN_STATUSES,
    Lead,
)
from app.platform.db import UnitOfWork


def find_by_submission(*, session: UnitOfWork, clinic_id: int, submission_id: str) -> Lead | None:
    """The lead a web-form submission already created, if any (deleted or not)."""
    return session.scalar(
        sa.select(Lead).where(Lead.clinic_id == clinic_id, Lead.submission_id == submission_id).limit(1)
    )


def find_by_external_ids(*, session: UnitOfWork, clinic_id: int, external_ids: list[str]) -> dict[str, int]:
    """{external id: lead id} of the clinic's leads an import already created (deleted or not)."""
    if not external_ids:
        return {}
    rows = session.execute(
        sa.select(Lead.external_id, Lead.id).where(
            Lead.clinic_id == clinic_id, Lead.external_id.in_(sorted(set(external_ids)))
        )
    )
    return dict(rows.all())


def open_leads_of(
    *, session: UnitOfWork, clinic_id: int, user_id: int | None, for_update: bool = False
) -> list[Lead]:
    """A user's open (new or active), live leads, oldest first (`user_id` None: the unowned ones)."""
    stmt = (
        sa.select(Lead)
        .where(
            Lead.clinic_id == clinic_id,
            Lead.assigned_to_id == user_id,
            Lead.deleted_at.is_(None),
            Lead.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .order_by(Lead.id)
    )
    if for_update:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def open_lead_counts(*, session: UnitOfWork, clinic_id: int, user_ids: list[int]) -> dict[int, int]:
    """How many open, live leads each user owns (users with none are 0)."""
    counts = dict.fromkeys(user_ids, 0)
    if not user_ids:
        return counts
    stmt = (
        sa.select(Lead.assigned_to_id, sa.func.count())
        .where(
            Lead.clinic_id == clinic_id,
            Lead.assigned_to_id.in_(user_ids),
            Lead.deleted_at.is_(None),
            Lead.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .group_by(Lead.assigned_to_id)
    )
    for user_id, count in session.execute(stmt):
        counts[user_id] = count
    return counts


def live_leads_by_id(*, session: UnitOfWork, clinic_id: int, lead_ids: list[int]) -> dict[int, Lead]:
    """The clinic's live leads among `lead_ids`, by id, in one query (another clinic's are left out)."""
    if not lead_ids:
        return {}
    stmt = sa.select(Lead).where(
        Lead.id.in_(lead_ids), Lead.clinic_id == clinic_id, Lead.deleted_at.is_(None)
    )
    return {lead.id: lead for lead in session.scalars(stmt)}
