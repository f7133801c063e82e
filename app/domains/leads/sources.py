"""Lead sources: the clinic's list, created and edited by admins; the source a new lead names."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.auth.models import Clinic, User
from app.domains.leads import rules
from app.domains.leads.models import (
    LeadSource,
    LeadSourceCategory,
)
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound, ValidationFailed
from app.platform.roles import Actor

SOURCE_FIELDS = ("name", "category", "description", "is_active", "monthly_cost", "coordinator_ids")


def seed_default_sources(*, session: UnitOfWork, clinic: Clinic, now: datetime) -> None:
    """One active source per category for a new clinic."""
    for name, category in rules.DEFAULT_SOURCES:
        session.add(
            LeadSource(
                clinic_id=clinic.id,
                name=name,
                category=category.value,
                is_active=True,
                coordinator_ids=[],
                created_at=now,
                updated_at=now,
            )
        )
    session.flush()


def list_sources(
    *, session: UnitOfWork, actor: Actor, category: str | None = None, is_active: bool | None = None
) -> list[LeadSource]:
    """The clinic's lead sources by name, optionally of one category or activity state."""
    stmt = sa.select(LeadSource).where(LeadSource.clinic_id == actor.clinic_id)
    if category:
        stmt = stmt.where(LeadSource.category == category)
    if is_active is not None:
        stmt = stmt.where(LeadSource.is_active.is_(is_active))
    return list(session.scalars(stmt.order_by(LeadSource.name, LeadSource.id)))


def get_source(
    *, session: UnitOfWork, clinic_id: int, source_id: int, for_update: bool = False
) -> LeadSource:
    """One source of the clinic; another clinic's source is not found. `for_update` locks it."""
    source = session.get(
        LeadSource, source_id, with_for_update=for_update or None, populate_existing=for_update
    )
    if source is None or source.clinic_id != clinic_id:
        raise NotFound(f"lead source {source_id} not found")
    return source


def _name_taken(session: UnitOfWork, clinic_id: int, name: str, except_id: int | None) -> bool:
    stmt = sa.select(LeadSource.id).where(
        LeadSource.clinic_id == clinic_id, sa.func.lower(LeadSource.name) == name.lower()
    )
    if except_id is not None:
        stmt = stmt.where(LeadSource.id != except_id)
    return session.scalar(stmt.limit(1)) is not None


def _name_conflict(name: str) -> Conflict:
    return Conflict(
        f"a lead source named {name!r} already exists",
        errors={"json": {"name": ["already taken"]}},
        code="name_taken",
    )


def validate_coordinator_ids(*, session: UnitOfWork, clinic_id: int, user_ids: list[int]) -> list[int]:
    """The ids, each an active coordinator-capable user of the clinic; else 422 naming the field."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return []
    found = {
        user.id: user
        for user in session.scalars(sa.select(User).where(User.id.in_(wanted), User.clinic_id == clinic_id))
    }
    problems = []
    for user_id in wanted:
        user = found.get(user_id)
        if user is None:
            problems.append(f"user {user_id} is not a user of this clinic")
        elif not user.active:
            problems.append(f"user {user_id} is not active")
        elif user.role not in rules.COORDINATOR_ROLES:
            problems.append(f"user {user_id} is a {user.role}, not a coordinator")
    if problems:
        raise ValidationFailed("coordinator_ids", "; ".join(problems))
    return wanted


def _source_snapshot(source: LeadSource) -> dict:
    snapshot = {k: getattr(source, k) for k in SOURCE_FIELDS}
    snapshot["monthly_cost"] = None if source.monthly_cost is None else str(source.monthly_cost)
    return snapshot


def _flush_source(session: UnitOfWork, source: LeadSource) -> None:
    # The pre-check answers the common case; the unique constraint settles a race between two
    # admins creating the same name at once (a 409 instead of a 500).
    try:
        with session.begin_nested():
            session.flush()
    except sa.exc.IntegrityError as exc:
        raise _name_conflict(source.name) from exc


def create_source(*, session: UnitOfWork, actor: Actor, data: dict, now: datetime) -> LeadSource:
    """A new lead source; names are unique per clinic (case-insensitively)."""
    name = data["name"].strip()
    if not name:
        raise ValidationFailed("name", "must not be blank")
    if _name_taken(session, actor.clinic_id, name, None):
        raise _name_conflict(name)
    source = LeadSource(
        clinic_id=actor.clinic_id,
        name=name,
        category=data["category"],
        description=data.get("description"),
        is_active=data.get("is_active", True),
        monthly_cost=data.get("monthly_cost"),
        coordinator_ids=validate_coordinator_ids(
            session=session, clinic_id=actor.clinic_id, user_ids=data.get("coordinator_ids") or []
        ),
        created_at=now,
        updated_at=now,
    )
    session.add(source)
    _flush_source(session, source)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead_source.create",
            subject_type="lead_source",
            subject_id=source.id,
            after=_source_snapshot(source),
            at=now,
        ),
    )
    return source


def update_source(
    *, session: UnitOfWork, actor: Actor, source_id: int, data: dict, now: datetime
) -> LeadSource:
    """Change a lead source (name, category, cost, active, coordinators)."""
    source = get_source(session=session, clinic_id=actor.clinic_id, source_id=source_id, for_update=True)
    before = _source_snapshot(source)
    if "name" in data:
        name = data["name"].strip()
        if not name:
            raise ValidationFailed("name", "must not be blank")
        if _name_taken(session, actor.clinic_id, name, source.id):
            raise _name_conflict(name)
        data = {**data, "name": name}
    if "coordinator_ids" in data:
        data = {
            **data,
            "coordinator_ids": validate_coordinator_ids(
                session=session, clinic_id=actor.clinic_id, user_ids=data["coordinator_ids"] or []
            ),
        }
    for key, value in data.items():
        setattr(source, key, value)
    source.updated_at = now
    _flush_source(session, source)
    old, new = audit.changes(before, _source_snapshot(source))
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead_source.update",
            subject_type="lead_source",
            subject_id=source.id,
            before=old,
            after=new,
            at=now,
        ),
    )
    return source


def active_source_named(*, session: UnitOfWork, clinic_id: int, name: str) -> LeadSource | None:
    """The clinic's active source with this name (case-insensitive), if any."""
    return session.scalar(
        sa.select(LeadSource)
        .where(
            LeadSource.clinic_id == clinic_id,
            LeadSource.is_active.is_(True),
            sa.func.lower(LeadSource.name) == name.strip().lower(),
        )
        .limit(1)
    )


def first_active_source_of(*, session: UnitOfWork, clinic_id: int, category: str) -> LeadSource | None:
    """The clinic's oldest active source of a category, if any."""
    return session.scalar(
        sa.select(LeadSource)
        .where(
            LeadSource.clinic_id == clinic_id,
            LeadSource.is_active.is_(True),
            LeadSource.category == category,
        )
        .order_by(LeadSource.id)
        .limit(1)
    )


def new_lead_source_join(clinic_id: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """SQL: joins the source a new lead of `clinic_id` is attributed to: the `source_id` parameter
    if given (of the clinic), else the clinic's oldest active source of category OTHER. Check what
    was found with `checked_source`."""
    sources, other = LeadSource.__table__, LeadSource.__table__.alias("other_source")
    oldest_other = (
        sa.select(other.c.id)
        .where(
            other.c.clinic_id == clinic_id,
            other.c.is_active.is_(True),
            other.c.category == sa.literal_column(f"'{LeadSourceCategory.OTHER.value}'"),
        )
        .order_by(other.c.id)
        .limit(1)
        .scalar_subquery()
    )
    given = sa.bindparam("source_id", type_=sa.Integer)
    return sa.and_(sources.c.clinic_id == clinic_id, sources.c.id == sa.func.coalesce(given, oldest_other))


def checked_source(*, source_id: int | None, found: LeadSource | None) -> LeadSource:
    """The source a lead is attributed to (`found` for `source_id`, or for None the fallback), else a 422."""
    if source_id is None:
        if found is None:
            raise ValidationFailed("source_id", "required: the clinic has no active source of category OTHER")
        return found
    if found is None:
        raise ValidationFailed("source_id", f"lead source {source_id} does not exist")
    if not found.is_active:
        raise ValidationFailed("source_id", f"lead source {source_id} is inactive")
    return found
