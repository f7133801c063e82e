"""Who may take a clinic's work: the one rule for a follow-up task's assignee, whether a person names
them (a task, a bulk action) or the engine picks them (automation's assignees, the bulk round robin,
the admin who takes what nobody else can)."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.auth.models import LEAD_OWNER_ROLES, User
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.roles import Role

# The roles that work leads: a task goes to one of them (a doctor may be told, never given one).
ASSIGNEE_ROLES = LEAD_OWNER_ROLES


def may_take_work(user: User | None, clinic_id: int) -> bool:
    """An active user of the clinic whose role works leads. Out of office or not: a person naming
    them knows; the engine's picks (`in_office`) also leave out those away."""
    return user is not None and user.clinic_id == clinic_id and user.active and user.role in ASSIGNEE_ROLES


def assignee(*, session: UnitOfWork, clinic_id: int, user_id: int, field: str) -> User:
    """The user named to take the clinic's work, else a 422 naming `field`."""
    user = session.get(User, user_id)
    if not may_take_work(user, clinic_id):
        raise ValidationFailed(field, f"user {user_id} is not an active coordinator of this clinic")
    return user


def _active(clinic_id: int, roles) -> tuple[sa.ColumnElement[bool], ...]:
    return User.clinic_id == clinic_id, User.active.is_(True), User.role.in_(list(roles))


def in_office(session: UnitOfWork, clinic_id: int, roles=ASSIGNEE_ROLES) -> list[int]:
    """The ids of the clinic's active users of `roles` (by default: all who may take work) who are
    not out of office, by id: whom the engine gives work to, or tells."""
    stmt = sa.select(User.id).where(*_active(clinic_id, roles), User.out_of_office.is_(False))
    return list(session.scalars(stmt.order_by(User.id)))


def fallback_assignee(session: UnitOfWork, clinic_id: int) -> int | None:
    """Who takes the engine's task on a lead without a coordinator: the clinic's first active admin."""
    stmt = sa.select(User.id).where(*_active(clinic_id, [Role.CLINIC_ADMIN]))
    return session.scalar(stmt.order_by(User.id).limit(1))
