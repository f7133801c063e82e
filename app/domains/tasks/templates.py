"""Task templates: a clinic's named task shapes (title, type, priority, due offset), deactivated
rather than deleted."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.tasks.models import TaskTemplate
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound
from app.platform.roles import Actor


def list_templates(*, session: UnitOfWork, clinic_id: int) -> list[TaskTemplate]:
    return list(
        session.scalars(
            sa.select(TaskTemplate).where(TaskTemplate.clinic_id == clinic_id).order_by(TaskTemplate.name)
        )
    )


def get_template(*, session: UnitOfWork, clinic_id: int, template_id: int) -> TaskTemplate:
    template = session.get(TaskTemplate, template_id)
    if template is None or template.clinic_id != clinic_id:
        raise NotFound(f"task template {template_id} not found")
    return template


def _name_free(session: UnitOfWork, clinic_id: int, name: str, except_id: int | None = None) -> None:
    clash = session.scalar(
        sa.select(TaskTemplate.id).where(
            TaskTemplate.clinic_id == clinic_id,
            TaskTemplate.name == name,
            TaskTemplate.id != (except_id or 0),
        )
    )
    if clash is not None:
        raise Conflict(
            f"a task template named {name!r} exists", errors={"json": {"name": ["taken"]}}, code="name_taken"
        )


def create_template(*, session: UnitOfWork, actor: Actor, data: dict, now: datetime) -> TaskTemplate:
    _name_free(session, actor.clinic_id, data["name"])
    template = TaskTemplate(clinic_id=actor.clinic_id, created_at=now, updated_at=now, **data)
    session.add(template)
    session.flush()
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="task_template.create",
            subject_type="task_template",
            subject_id=template.id,
            after=dict(data),
            at=now,
        ),
    )
    return template


def update_template(*, session: UnitOfWork, actor: Actor, template_id: int, data: dict, now: datetime):
    template = get_template(session=session, clinic_id=actor.clinic_id, template_id=template_id)
    if "name" in data:
        _name_free(session, actor.clinic_id, data["name"], except_id=template.id)
    before = {k: getattr(template, k) for k in data}
    for key, value in data.items():
        setattr(template, key, value)
    template.updated_at = now
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="task_template.update",
            subject_type="task_template",
            subject_id=template.id,
            before=before,
            after=dict(data),
            at=now,
        ),
    )
    return template


def deactivate_template(*, session: UnitOfWork, actor: Actor, template_id: int, now: datetime) -> None:
    """Templates are deactivated, not deleted: tasks made from them keep pointing at them."""
    template = get_template(session=session, clinic_id=actor.clinic_id, template_id=template_id)
    template.is_active, template.updated_at = False, now
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="task_template.deactivate",
            subject_type="task_template",
            subject_id=template.id,
            at=now,
        ),
    )
