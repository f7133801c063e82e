"""Use cases of the pipeline: configure stages; move a lead, mark it lost, convert it.

Every move closes the lead's open stage-history row, opens a new one, sets `stage_entered_at`,
writes a STAGE_CHANGE activity and a `lead.stage_changed` event, all in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityType
from app.domains.leads import service as leads
from app.domains.leads import updates
from app.domains.leads.models import HesitationReason, Lead, LeadStatus
from app.domains.pipeline import rules
from app.domains.pipeline.events import LeadConverted, LeadLost, LeadStageChanged
from app.domains.pipeline.models import LeadStageHistory, PipelineStage
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork, new_row
from app.platform.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from app.platform.events import service as events
from app.platform.roles import Actor

if TYPE_CHECKING:
    from app.domains.auth.models import Clinic

STAGE_FIELDS = (
    "name",
    "description",
    "color",
    "task_template_id",
    "max_days_in_stage",
    "is_terminal",
    "is_default",
)


# --- stage configuration -----------------------------------------------------------------------


def seed_default_stages(*, session: UnitOfWork, clinic: Clinic, now: datetime) -> None:
    """The spec's eight stages for a new clinic."""
    for position, spec in enumerate(rules.DEFAULT_STAGES, start=1):
        session.add(
            PipelineStage(
                clinic_id=clinic.id,
                name=spec.name,
                slug=spec.slug,
                position=position,
                color=spec.color,
                max_days_in_stage=spec.max_days_in_stage,
                is_terminal=spec.is_terminal,
                is_default=spec.is_default,
                created_at=now,
                updated_at=now,
            )
        )
    session.flush()


def list_stages(*, session: UnitOfWork, clinic_id: int) -> list[PipelineStage]:
    """The clinic's stages in board order."""
    return list(
        session.scalars(
            sa.select(PipelineStage)
            .where(PipelineStage.clinic_id == clinic_id)
            .order_by(PipelineStage.position, PipelineStage.id)
        )
    )


def get_stage(
    *, session: UnitOfWork, clinic_id: int, stage_id: int, for_update: bool = False
) -> PipelineStage:
    """One stage of the clinic; another clinic's stage is not found. `for_update` locks it."""
    stage = session.get(
        PipelineStage, stage_id, with_for_update=for_update or None, populate_existing=for_update
    )
    if stage is None or stage.clinic_id != clinic_id:
        raise NotFound(f"pipeline stage {stage_id} not found")
    return stage


def stage_by_slug(*, session: UnitOfWork, clinic_id: int, slug: str) -> PipelineStage | None:
    """The clinic's stage with this slug, if any."""
    return session.scalar(
        sa.select(PipelineStage).where(PipelineStage.clinic_id == clinic_id, PipelineStage.slug == slug)
    )


def default_stage_slug(clinic_id: sa.ColumnElement[int]) -> sa.ScalarSelect:
    """SQL: the slug of the stage new leads of `clinic_id` start in (NULL: none; see `default_stage`)."""
    stages = PipelineStage.__table__
    return (
        sa.select(stages.c.slug)
        .where(stages.c.clinic_id == clinic_id, stages.c.is_default.is_(True))
        .order_by(stages.c.position)
        .limit(1)
        .scalar_subquery()
    )


def no_default_stage() -> Conflict:
    # Only reachable if the clinic was never set up; say so instead of inventing a stage.
    return Conflict(
        "this clinic has no default pipeline stage; configure the pipeline first",
        code="pipeline_not_configured",
    )


def default_stage(*, session: UnitOfWork, clinic_id: int) -> PipelineStage:
    """The stage new leads start in."""
    stage = session.scalar(
        sa.select(PipelineStage)
        .where(PipelineStage.clinic_id == clinic_id, PipelineStage.is_default.is_(True))
        .order_by(PipelineStage.position)
        .limit(1)
    )
    if stage is None:
        raise no_default_stage()
    return stage


# --- moving leads ------------------------------------------------------------------------------


def new_stay(*, lead: Lead, previous: str | None, actor_ref: str, now: datetime) -> LeadStageHistory:
    """The lead's stay in its stage, entered `now` from `previous` (None: a new lead's first): the
    one builder of a stay."""
    return new_row(
        LeadStageHistory,
        clinic_id=lead.clinic_id,
        lead_id=lead.id,
        from_stage=previous,
        to_stage=lead.pipeline_stage,
        entered_at=now,
        by=actor_ref,
        lead_created_at=lead.created_at,
    )


def enter_first_stage(*, session: UnitOfWork, lead: Lead, actor_ref: str, now: datetime) -> None:
    """A new lead (built in its stage, `stage_entered_at` now) opens its first stay."""
    _enter_stage(session, lead, previous=None, actor_ref=actor_ref, now=now)


def _enter_stage(
    session: UnitOfWork, lead: Lead, *, previous: str | None, actor_ref: str, now: datetime
) -> None:
    # The one way a lead enters a stage (its fields already set): its stay opened.
    session.add(new_stay(lead=lead, previous=previous, actor_ref=actor_ref, now=now))


def stage_history(*, session: UnitOfWork, clinic_id: int, lead_id: int) -> list[LeadStageHistory]:
    """Every stay of a lead in a stage, oldest first."""
    lead = leads.get_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
    return list(
        session.scalars(
            sa.select(LeadStageHistory)
            .where(LeadStageHistory.lead_id == lead.id)
            .order_by(LeadStageHistory.entered_at, LeadStageHistory.id)
        )
    )


def _view(stage: PipelineStage) -> rules.StageView:
    return rules.StageView(slug=stage.slug, position=stage.position, is_terminal=stage.is_terminal)


def move_targets(stages: list[PipelineStage]) -> dict[str, list[str]]:
    """{slug: where a lead in that stage may be moved by a person, the next stage first} for the
    clinic's `stages` (what a move form offers: `rules.move_targets`)."""
    views = [_view(stage) for stage in stages]
    return {view.slug: rules.move_targets(view, views) for view in views}


def _current_stage(session: UnitOfWork, lead: Lead) -> PipelineStage:
    stage = stage_by_slug(session=session, clinic_id=lead.clinic_id, slug=lead.pipeline_stage)
    if stage is None:
        raise Conflict(
            f"the lead's stage {lead.pipeline_stage!r} is no longer in the pipeline",
            code="pipeline_not_configured",
        )
    return stage


def _target_stage(session: UnitOfWork, lead: Lead, slug: str) -> PipelineStage:
    stage = stage_by_slug(session=session, clinic_id=lead.clinic_id, slug=slug)
    if stage is None:
        raise ValidationFailed("stage", f"no stage {slug!r} in this clinic's pipeline")
    return stage


def _move(
    session: UnitOfWork, lead: Lead, target: PipelineStage, actor: Actor, now: datetime, notes=None
) -> str:
    """Put the lead in `target`: history, stage_entered_at, activity, event; returns the old slug."""
    previous = lead.pipeline_stage
    open_stay = session.scalar(
        sa.select(LeadStageHistory)
        .where(LeadStageHistory.lead_id == lead.id, LeadStageHistory.left_at.is_(None))
        .order_by(LeadStageHistory.id.desc())
        .limit(1)
    )
    if open_stay is not None:
        open_stay.left_at = now
        open_stay.stay_seconds = (now - open_stay.entered_at).total_seconds()  # the stage-time reports'
    lead.pipeline_stage = target.slug
    lead.stage_entered_at = now
    lead.stage_stale_at = None  # a new stay: it may be flagged once again
    updates.touch(lead=lead, actor_ref=actor.ref, now=now)
    _enter_stage(session, lead, previous=previous, actor_ref=actor.ref, now=now)
    session.flush()
    events.emit(
        session=session,
        event=LeadStageChanged(
            lead_id=lead.id, previous_stage=previous, new_stage=target.slug, status=lead.status
        ),
        subject=events.Subject.lead(lead),
        now=now,
    )
    activities.record(
        session=session,
        lead=lead,
        facts=activities.ActivityFacts(
            type=ActivityType.STAGE_CHANGE,
            at=now,
            actor_ref=actor.ref,
            user_id=actor.user_id,
            previous_stage=previous,
            new_stage=target.slug,
            notes=notes,
        ),
    )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=lead.clinic_id,
            actor=actor.ref,
            action="lead.stage_change",
            subject_type="lead",
            subject_id=lead.id,
            before={"pipeline_stage": previous},
            after={"pipeline_stage": target.slug, "status": lead.status},
            at=now,
        ),
    )
    return previous


def _ensure_may_close(lead: Lead) -> None:
    leads.ensure_not_converted(lead)
    if lead.status == LeadStatus.LOST:
        raise InvalidTransition(f"lead {lead.id} is already lost", code="lead_closed")


@dataclass(frozen=True)
class StageChange:
    """A move of a lead to `stage`: to lost with a `reason`; `notes` for its timeline; into
    pending_decision with why the family hesitates (`hesitation_reason`)."""

    stage: str
    reason: str | None = None
    notes: str | None = None
    hesitation_reason: str | None = None


def change_stage(
    *,
    session: UnitOfWork,
    actor: Actor,
    lead_id: int,
    change: StageChange,
    now: datetime,
    ask_why: bool = True,
) -> Lead:
    """Move a lead forward (skipping is fine), or to lost with a reason; never backwards.

    A person moving a lead to pending_decision says why the family hesitates (`ask_why`); a rule's
    move may leave it unknown."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    leads.ensure_not_converted(lead)
    target = _target_stage(session, lead, change.stage)
    if target.slug == rules.LOST:
        if not change.reason:
            raise ValidationFailed("reason", "a lost lead needs a reason (LostReason)")
        return mark_lost(
            session=session, actor=actor, lead_id=lead.id, reason=change.reason, notes=change.notes, now=now
        )
    if target.slug == rules.TREATMENT_STARTED:
        raise ValidationFailed(
            "stage", "treatment_started converts the lead: use POST /api/leads/<id>/convert"
        )
    if change.reason is not None:
        raise ValidationFailed("reason", "a reason is only for moving to lost")
    _check_hesitation(target.slug, change.hesitation_reason, ask_why)
    refusal = rules.move_refusal(_view(_current_stage(session, lead)), _view(target))
    if refusal:
        raise InvalidTransition(refusal)
    # The higher domains' conditions on entering a stage (STAGE_GUARDS of app/handlers.py): each
    # raises its refusal, e.g. consultation_completed before the visit booked here has started.
    for guard in session.database.wiring.stage_guards:
        guard(session=session, lead_id=lead.id, stage=target.slug, now=now)
    if lead.status == LeadStatus.NEW:
        lead.status = LeadStatus.ACTIVE.value  # out of new_lead: the lead is being worked
    if change.hesitation_reason is not None:
        lead.hesitation_reason = change.hesitation_reason
    _move(session, lead, target, actor, now, notes=change.notes)
    return lead


def _check_hesitation(stage: str, hesitation_reason: str | None, ask_why: bool) -> None:
    if stage == rules.PENDING_DECISION:
        if ask_why and not hesitation_reason:
            raise ValidationFailed(
                "hesitation_reason",
                "entering pending_decision needs the reason the family hesitates "
                f"({', '.join(r.value for r in HesitationReason)})",
            )
    elif hesitation_reason is not None:
        raise ValidationFailed("hesitation_reason", "a hesitation reason is only for pending_decision")


def mark_lost(
    *, session: UnitOfWork, actor: Actor, lead_id: int, reason: str, notes: str | None, now: datetime
) -> Lead:
    """Close a lead as lost, with the spec's reason and optional notes."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    _ensure_may_close(lead)
    target = _target_stage(session, lead, rules.LOST)
    lead.status = LeadStatus.LOST.value
    lead.lost_at = now
    lead.lost_reason = reason
    lead.lost_notes = notes
    previous = _move(session, lead, target, actor, now, notes=notes)
    events.emit(
        session=session,
        event=LeadLost(lead_id=lead.id, previous_stage=previous, reason=reason),
        subject=events.Subject.lead(lead),
        now=now,
    )
    return lead


def convert_lead(
    *, session: UnitOfWork, actor: Actor, lead_id: int, now: datetime, treatment_value: Decimal | None = None
) -> Lead:
    """Convert a lead to a patient (treatment started); it is locked from then on. `treatment_value`
    (a plain amount in the clinic's currency) is what revenue and ROI per source add up."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    _ensure_may_close(lead)
    target = _target_stage(session, lead, rules.TREATMENT_STARTED)
    lead.status = LeadStatus.CONVERTED.value
    lead.converted_at = now
    lead.treatment_value = treatment_value
    previous = _move(session, lead, target, actor, now)
    events.emit(
        session=session,
        event=LeadConverted(lead_id=lead.id, previous_stage=previous, converted_at=now.isoformat()),
        subject=events.Subject.lead(lead),
        now=now,
    )
    return lead
