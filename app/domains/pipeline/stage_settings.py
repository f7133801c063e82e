"""A clinic's pipeline stages configured: added, changed, reordered (each audited)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.pipeline import rules
from app.domains.pipeline.events import StagesReordered
from app.domains.pipeline.models import PipelineStage
from app.domains.pipeline.service import STAGE_FIELDS, get_stage, list_stages, stage_by_slug
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, ValidationFailed
from app.platform.events import service as events
from app.platform.roles import Actor


def _snapshot(stage: PipelineStage) -> dict:
    return {"slug": stage.slug, "position": stage.position, **{k: getattr(stage, k) for k in STAGE_FIELDS}}


def _audit_stage(
    session: UnitOfWork, actor: Actor, action: str, stage: PipelineStage, before: dict | None, now: datetime
) -> None:
    """Audit `action` on `stage`: what changed since its snapshot `before`, or all of it when new (None)."""
    after = _snapshot(stage)
    if before is not None:
        before, after = audit.changes(before, after)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action=action,
            subject_type="pipeline_stage",
            subject_id=stage.id,
            before=before,
            after=after,
            at=now,
        ),
    )


def _clear_other_defaults(session: UnitOfWork, stage: PipelineStage, now: datetime) -> None:
    for other in list_stages(session=session, clinic_id=stage.clinic_id):
        if other.id != stage.id and other.is_default:
            other.is_default = False
            other.updated_at = now


def _check_flags(stage_slug: str, is_terminal: bool, is_default: bool) -> None:
    if is_default and is_terminal:
        raise ValidationFailed("is_default", "new leads cannot start in a terminal stage")
    if stage_slug in rules.PROTECTED_TERMINAL_SLUGS and not is_terminal:
        raise ValidationFailed(
            "is_terminal", f"{stage_slug} must stay terminal (conversion and loss end a lead)"
        )


def create_stage(*, session: UnitOfWork, actor: Actor, data: dict, now: datetime) -> PipelineStage:
    """A new stage, inserted at `order` (default: before the first terminal stage)."""
    slug = data.get("slug") or rules.slugify(data["name"])
    if not slug:
        raise ValidationFailed("slug", "give a slug: the name has no letters or digits to make one from")
    if stage_by_slug(session=session, clinic_id=actor.clinic_id, slug=slug) is not None:
        raise Conflict(
            f"a stage with slug {slug!r} exists",
            errors={"json": {"slug": ["already taken"]}},
            code="name_taken",
        )
    is_terminal, is_default = data.get("is_terminal", False), data.get("is_default", False)
    _check_flags(slug, is_terminal, is_default)
    stages = list_stages(session=session, clinic_id=actor.clinic_id)
    if data.get("order") is not None:
        index = min(data["order"], len(stages) + 1) - 1
    else:
        index = next((i for i, s in enumerate(stages) if s.is_terminal), len(stages))
    stage = PipelineStage(
        clinic_id=actor.clinic_id,
        slug=slug,
        position=0,
        **{k: data.get(k) for k in STAGE_FIELDS if k not in ("is_terminal", "is_default")},
        is_terminal=is_terminal,
        is_default=is_default,
        created_at=now,
        updated_at=now,
    )
    stages.insert(index, stage)
    for position, each in enumerate(stages, start=1):
        if each.position != position:
            each.position = position
            each.updated_at = now
    session.add(stage)
    try:
        with session.begin_nested():
            session.flush()
    except sa.exc.IntegrityError as exc:  # a concurrent create took the slug
        raise Conflict(
            f"a stage with slug {slug!r} exists",
            errors={"json": {"slug": ["already taken"]}},
            code="name_taken",
        ) from exc
    if is_default:
        _clear_other_defaults(session, stage, now)
    _audit_stage(session, actor, "pipeline_stage.create", stage, None, now)
    return stage


def update_stage(
    *, session: UnitOfWork, actor: Actor, stage_id: int, data: dict, now: datetime
) -> PipelineStage:
    """Rename, recolour, set limits and flags of a stage; its slug never changes."""
    stage = get_stage(session=session, clinic_id=actor.clinic_id, stage_id=stage_id, for_update=True)
    before = _snapshot(stage)
    is_terminal = data.get("is_terminal", stage.is_terminal)
    is_default = data.get("is_default", stage.is_default)
    if stage.is_default and data.get("is_default") is False:
        raise ValidationFailed(
            "is_default", "a pipeline needs a default stage: make another stage the default"
        )
    _check_flags(stage.slug, is_terminal, is_default)
    for key, value in data.items():
        setattr(stage, key, value)
    stage.updated_at = now
    if is_default:
        _clear_other_defaults(session, stage, now)
    session.flush()
    _audit_stage(session, actor, "pipeline_stage.update", stage, before, now)
    return stage


def reorder_stages(
    *, session: UnitOfWork, actor: Actor, stage_ids: list[int], now: datetime
) -> list[PipelineStage]:
    """Put the clinic's stages in the given order; the list must name each stage exactly once."""
    stages = {s.id: s for s in list_stages(session=session, clinic_id=actor.clinic_id)}
    duplicates = sorted({i for i in stage_ids if stage_ids.count(i) > 1})
    if duplicates:
        raise ValidationFailed("stage_ids", f"listed more than once: {duplicates}")
    unknown = sorted(set(stage_ids) - set(stages))
    missing = sorted(set(stages) - set(stage_ids))
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"not stages of this clinic: {unknown}")
        if missing:
            parts.append(f"missing: {missing}")
        raise ValidationFailed(
            "stage_ids", "list every stage of the clinic exactly once; " + "; ".join(parts)
        )
    before = [s.id for s in sorted(stages.values(), key=lambda s: s.position)]
    for position, stage_id in enumerate(stage_ids, start=1):
        stage = stages[stage_id]
        if stage.position != position:
            stage.position = position
            stage.updated_at = now
    session.flush()
    # Leads' furthest stages follow the new order (analytics consumes the event).
    events.emit(
        session=session,
        event=StagesReordered(order=list(stage_ids)),
        subject=events.Subject(actor.clinic_id, "clinic", actor.clinic_id),
        now=now,
    )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="pipeline_stage.reorder",
            subject_type="pipeline_stage",
            subject_id=None,
            before={"order": before},
            after={"order": list(stage_ids)},
            at=now,
        ),
    )
    session.flush()
    return list_stages(session=session, clinic_id=actor.clinic_id)
