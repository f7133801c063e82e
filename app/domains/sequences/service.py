"""Sequences (multi-step cadences) and enrollments: CRUD, enroll, run each step in order, unenroll.

An enrollment runs one step at a time: each step is an `AutomationStep` (action type
`sequence_step`, carrying a copy of the step's definition), and only when it has run is the next
one scheduled, `delay` after it. So steps always run in order, a step moved out of quiet hours
delays the rest, and ending an enrollment has exactly one pending step to cancel. A message step
(email, SMS, Instagram, WhatsApp) goes through the contact policy (`outreach.send_message`, by
actions.py); a call step is a call task inside business hours. A step held back by the policy is
recorded as skipped and the sequence goes on.

Editing a sequence changes what its running enrollments do from their next step on; a step
already scheduled keeps the copy it was scheduled with. Deactivating a sequence stops new
enrollments; running ones finish (unenroll them to stop them).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.auth.models import Clinic
from app.domains.automation import rules, steps
from app.domains.automation.executors import outreach
from app.domains.automation.models import AutomationStep, EnrollmentStatus, SequenceEnrollment, StepStatus
from app.domains.business_hours.rules import calendar_of
from app.domains.conversations import outbound_media
from app.domains.lead_messages import policy
from app.domains.lead_messages import templates as message_templates
from app.domains.leads import service as leads
from app.domains.sequences import actions, criteria, distance, graph, variants, waits
from app.domains.sequences.models import Sequence
from app.platform.audit import service as audit
from app.platform.config import Settings
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.platform.roles import Actor
from app.platform.scheduling import service as scheduling

if TYPE_CHECKING:
    from app.domains.leads.models import Lead

CHANNELS = ("email", "sms", "instagram", "whatsapp", "call")
MAX_STEPS = 20
SEQUENCE_FIELDS = (
    "name",
    "description",
    "steps",
    "active",
    "allow_concurrent",
    "entry_conditions",
    "exit_conditions",
    "paced_by_pass",
)
# end_reason values
REPLIED, CONVERTED, LOST, DELETED, OPTED_OUT, MANUAL, COMPLETED = (
    "replied",
    "converted",
    "lost",
    "deleted",
    "opted_out",
    "manual",
    "completed",
)
BOOKED, BOUNCED = "consultation_booked", "bounced"
STEP_LIMIT = "step_limit"  # the enrollment took graph.MAX_STEPS_TAKEN steps (a loop through a wait)

# --- sequences ------------------------------------------------------------------------------------


def list_sequences(*, session: UnitOfWork, clinic_id: int) -> list[Sequence]:
    return list(
        session.scalars(sa.select(Sequence).where(Sequence.clinic_id == clinic_id).order_by(Sequence.id))
    )


def get_sequence(
    *, session: UnitOfWork, clinic_id: int, sequence_id: int, for_update: bool = False
) -> Sequence:
    """The clinic's sequence, else 404 (another clinic's sequence does not exist for this caller)."""
    stmt = sa.select(Sequence).where(Sequence.id == sequence_id, Sequence.clinic_id == clinic_id)
    sequence = session.scalar(stmt.with_for_update() if for_update else stmt)
    if sequence is None:
        raise NotFound(f"sequence {sequence_id} not found")
    return sequence


def _name_taken(session: UnitOfWork, clinic_id: int, name: str, except_id: int | None) -> bool:
    stmt = sa.select(Sequence.id).where(Sequence.clinic_id == clinic_id, Sequence.name == name)
    if except_id is not None:
        stmt = stmt.where(Sequence.id != except_id)
    return session.scalar(stmt.limit(1)) is not None


def _flush(session: UnitOfWork, sequence: Sequence) -> None:
    """Flush, turning a concurrent twin's name into the same 409 as the pre-check."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _name_conflict(sequence.name) from None


def _name_conflict(name: str) -> Conflict:
    return Conflict(f"a sequence named {name!r} exists in this clinic", code="name_taken")


def _check_message_templates(session: UnitOfWork, clinic_id: int, steps_: list[dict]) -> None:
    """422 naming the step whose message template is missing or of the other channel."""
    for index, step in enumerate(steps_):
        if "template_id" not in step:
            continue
        try:
            message_templates.template_for(
                session=session, clinic_id=clinic_id, template_id=step["template_id"], channel=step["channel"]
            )
        except ValidationFailed as wrong:
            raise ValidationFailed({"steps": {str(index): wrong.errors["json"]}}) from None


def create_sequence(
    *, session: UnitOfWork, actor: Actor, data: dict, now: datetime, settings: Settings
) -> Sequence:
    """A new sequence (steps validated by the schema: channels, delays, merge fields; `settings`:
    whether a step's image or video may be probed on a private address)."""
    _check_message_templates(session, actor.clinic_id, data["steps"])
    outbound_media.check_steps(data["steps"], settings)
    if _name_taken(session, actor.clinic_id, data["name"], None):
        raise _name_conflict(data["name"])
    sequence = Sequence(
        clinic_id=actor.clinic_id,
        name=data["name"],
        description=data.get("description"),
        steps=data["steps"],
        active=data.get("active", True),
        allow_concurrent=data.get("allow_concurrent", False),
        entry_conditions=data.get("entry_conditions"),
        exit_conditions=data.get("exit_conditions"),
        paced_by_pass=data.get("paced_by_pass", False),
        created_at=now,
        updated_at=now,
    )
    session.add(sequence)
    _flush(session, sequence)
    _audit(session, actor, "sequence.create", sequence, now)
    return sequence


def update_sequence(
    *, session: UnitOfWork, actor: Actor, sequence_id: int, data: dict, now: datetime, settings: Settings
) -> Sequence:
    """Change a sequence; running enrollments follow the new steps from their next step on."""
    _check_message_templates(session, actor.clinic_id, data.get("steps") or [])
    outbound_media.check_steps(data.get("steps") or [], settings)
    sequence = get_sequence(
        session=session, clinic_id=actor.clinic_id, sequence_id=sequence_id, for_update=True
    )
    if "name" in data and _name_taken(session, actor.clinic_id, data["name"], sequence.id):
        raise _name_conflict(data["name"])
    for key in SEQUENCE_FIELDS:
        if key in data:
            setattr(sequence, key, data[key])
    sequence.updated_at = now
    _flush(session, sequence)
    _audit(session, actor, "sequence.update", sequence, now)
    return sequence


def _audit(session: UnitOfWork, actor: Actor, action: str, sequence: Sequence, now: datetime) -> None:
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=sequence.clinic_id,
            actor=actor.ref,
            action=action,
            subject_type="sequence",
            subject_id=sequence.id,
            after={"name": sequence.name, "active": sequence.active, "steps": len(sequence.steps)},
            at=now,
        ),
    )


# --- enrollments ----------------------------------------------------------------------------------


def list_enrollments(*, session: UnitOfWork, actor: Actor, lead_id: int) -> list[SequenceEnrollment]:
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    stmt = sa.select(SequenceEnrollment).where(SequenceEnrollment.lead_id == lead.id)
    return list(session.scalars(stmt.order_by(SequenceEnrollment.id.desc())))


def enroll_by_hand(*, session: UnitOfWork, actor: Actor, lead_id: int, sequence_id: int, now: datetime):
    """POST /api/leads/:id/enrollments: another clinic's lead or sequence is a 404."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    return enroll(session=session, lead=lead, sequence_id=sequence_id, enrolled_by=actor.ref, now=now)


def enroll(
    *, session: UnitOfWork, lead: Lead, sequence_id: int, enrolled_by: str, now: datetime
) -> SequenceEnrollment:
    """Enroll the lead and schedule the first step. 409: inactive sequence, closed lead, already enrolled."""
    sequence = get_sequence(session=session, clinic_id=lead.clinic_id, sequence_id=sequence_id)
    distance.check_enrollable(session=session, lead=lead, sequence=sequence)
    criteria.check_entry(session=session, lead=lead, sequence=sequence, now=now)
    enrollment = SequenceEnrollment(
        clinic_id=lead.clinic_id,
        sequence_id=sequence.id,
        lead_id=lead.id,
        status=EnrollmentStatus.ACTIVE,
        current_step=0,
        enrolled_at=now,
        enrolled_by=enrolled_by,
    )
    try:
        with session.begin_nested():  # a concurrent enrollment loses on the partial unique index
            session.add(enrollment)
    except IntegrityError:
        raise distance.already_enrolled(lead, sequence) from None
    schedule_step(session, enrollment, lead, index=0, now=now)
    return enrollment


def schedule_step(
    session: UnitOfWork,
    enrollment: SequenceEnrollment,
    lead: Lead,
    *,
    index: int | None,
    now: datetime,
    via: dict | None = None,
) -> None:
    """Schedule step `index` (`delay` after `now`) as the next step the enrollment takes, `via` the
    wait's outcome that chose it (recorded on its path); None or past the last step completes it."""
    sequence = session.get(Sequence, enrollment.sequence_id)
    taken = list(enrollment.path or [])
    if index is None or index >= len(sequence.steps):
        _end(session, enrollment, EnrollmentStatus.COMPLETED, COMPLETED, now)
        return
    if len(taken) >= graph.MAX_STEPS_TAKEN:
        _end(session, enrollment, EnrollmentStatus.COMPLETED, STEP_LIMIT, now)
        return
    definition = variants.definition_for(
        sequence.steps[index], lead_id=lead.id, sequence_id=sequence.id, index=index
    )
    clinic = session.get(Clinic, lead.clinic_id)
    run_at = rules.after_delay(now, definition["delay"], calendar_of(clinic))
    enrollment.current_step = index
    enrollment.next_step_at = run_at
    key = graph.key_of(sequence.steps[index], index)
    enrollment.path = [*taken, {"step": index, "key": key, "at": now.isoformat(), "via": via}]
    if sequence.paced_by_pass:  # the clinic's follow-up pass releases it (release_paced_step)
        return
    step = _record_step(session, enrollment, lead, definition, run_at=run_at, now=now)
    if step is not None:
        steps.start(session=session, step=step, lead=lead, now=now)


def _record_step(
    session: UnitOfWork,
    enrollment: SequenceEnrollment,
    lead: Lead,
    definition: dict,
    *,
    run_at: datetime,
    now: datetime,
) -> AutomationStep | None:
    """The enrollment's current step as an automation step, once per visit (its dedupe key)."""
    index, taken = enrollment.current_step, len(enrollment.path or []) - 1
    # A straight sequence's n-th step keeps its key of old; a step visited out of order (a branch, a
    # loop through a wait) is named by how many steps came before it too, once per visit.
    visit = "" if taken == index else f":taken:{taken}"
    return steps.record(
        session=session,
        lead=lead,
        planned=steps.PlannedStep(
            action={
                "type": "sequence_step",
                "sequence_id": enrollment.sequence_id,
                "index": index,
                **definition,
            },
            run_at=run_at,
            dedupe_key=f"enrollment:{enrollment.id}:step:{index}{visit}",
            origin={"enrollment_id": enrollment.id, "sequence_step": index},
        ),
        now=now,
    )


def paced_step(*, session: UnitOfWork, enrollment: SequenceEnrollment, lead: Lead) -> dict:
    """The definition of the step a paced enrollment takes next (the lead's variant of it). The pass
    releases it on the clinic's behalf: on Instagram under Meta's human-agent policy (a person's 7-day
    window, the HUMAN_AGENT tag after the first 24 hours), the window the pass's silent leads need."""
    sequence = session.get(Sequence, enrollment.sequence_id)
    definition = variants.definition_for(
        sequence.steps[enrollment.current_step],
        lead_id=lead.id,
        sequence_id=sequence.id,
        index=enrollment.current_step,
    )
    if definition.get("channel") == policy.INSTAGRAM:
        definition = {**definition, policy.HUMAN_AGENT: True}
    return definition


def release_paced_step(
    *, session: UnitOfWork, enrollment: SequenceEnrollment, lead: Lead, now: datetime
) -> AutomationStep | None:
    """The follow-up pass sends a paced enrollment's next step now: on the ledger, run by a worker
    in its own transaction as every step is (the contact policy, the outbound path); None when
    this visit's step exists already."""
    definition = paced_step(session=session, enrollment=enrollment, lead=lead)
    step = _record_step(session, enrollment, lead, definition, run_at=now, now=now)
    if step is not None:
        steps.plan(session=session, step=step, now=now)
    return step


def hand_paced_step_over(
    *, session: UnitOfWork, enrollment: SequenceEnrollment, lead: Lead, reason: str, now: datetime
) -> AutomationStep | None:
    """The pass may not send a paced enrollment's next step (Instagram past Meta's windows) and a
    person takes it: the step is recorded skipped with `reason` and the enrollment moves on to its
    next step (the next pass's); None when this visit's step exists already."""
    definition = paced_step(session=session, enrollment=enrollment, lead=lead)
    step = _record_step(session, enrollment, lead, definition, run_at=now, now=now)
    if step is None:
        return None
    steps.finish(step, StepStatus.SKIPPED, now, reason=reason, held_back_by="contact policy")
    sequence = session.get(Sequence, enrollment.sequence_id)
    index = graph.after(sequence.steps, step.action["index"], step.action)
    schedule_step(session, enrollment, lead, index=index, now=now)
    return step


def run_sequence_step(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    """Carry out one step of an enrollment, then schedule the next (unless the step was moved)."""
    enrollment = session.scalar(
        sa.select(SequenceEnrollment).where(SequenceEnrollment.id == step.enrollment_id).with_for_update()
    )
    if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
        steps.finish(step, StepStatus.SKIPPED, now, reason="the enrollment has ended")
        return
    sequence = session.get(Sequence, enrollment.sequence_id)
    if criteria.meets_exit(session=session, lead=lead, sequence=sequence, now=now):
        steps.finish(step, StepStatus.SKIPPED, now, reason="the lead meets the sequence's exit conditions")
        unenroll(session=session, enrollment=enrollment, reason=criteria.EXITED, now=now)
        return
    outcome = actions.carry_out(session, step, lead, now)
    if outcome == outreach.MOVED:
        enrollment.next_step_at = step.run_at  # the rest waits for the moved step
        return
    if step.action.get("wait"):  # the family's move (or the timeout) chooses the next step
        waits.start(session=session, enrollment=enrollment, step=step, lead=lead, now=now)
        return
    index = graph.after(sequence.steps, step.action["index"], step.action)
    schedule_step(session, enrollment, lead, index=index, now=now)


def enroll_from_rule(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    """The rule action {"type": "enroll_sequence", "sequence_id": n}; a refusal is recorded, not raised."""
    try:
        with session.begin_nested():
            enrollment = enroll(
                session=session,
                lead=lead,
                sequence_id=step.action["sequence_id"],
                enrolled_by=f"rule:{step.rule_id}",
                now=now,
            )
    except DomainError as refused:
        steps.finish(step, StepStatus.SKIPPED, now, reason=refused.message)
        return
    steps.finish(step, StepStatus.DONE, now, enrollment_id=enrollment.id)


# --- ending enrollments ---------------------------------------------------------------------------


def unenroll_by_hand(
    *, session: UnitOfWork, actor: Actor, lead_id: int, enrollment_id: int, now: datetime
) -> SequenceEnrollment:
    """POST .../unenroll: end an active enrollment (reason "manual"); an ended one is a 409."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    enrollment = session.scalar(
        sa.select(SequenceEnrollment)
        .where(SequenceEnrollment.id == enrollment_id, SequenceEnrollment.lead_id == lead.id)
        .with_for_update()
    )
    if enrollment is None:
        raise NotFound(f"enrollment {enrollment_id} not found")
    if enrollment.status != EnrollmentStatus.ACTIVE:
        raise Conflict(
            f"enrollment {enrollment_id} has already ended ({enrollment.status})", code="enrollment_ended"
        )
    unenroll(session=session, enrollment=enrollment, reason=MANUAL, now=now)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="sequence.unenroll",
            subject_type="lead",
            subject_id=lead.id,
            after={"enrollment_id": enrollment.id, "sequence_id": enrollment.sequence_id},
            at=now,
        ),
    )
    return enrollment


def unenroll(*, session: UnitOfWork, enrollment: SequenceEnrollment, reason: str, now: datetime) -> None:
    """End an active enrollment with `reason`, cancelling its pending step."""
    _end(session, enrollment, EnrollmentStatus.UNENROLLED, reason, now)
    pending = session.scalars(
        sa.select(AutomationStep)
        .where(AutomationStep.enrollment_id == enrollment.id, AutomationStep.status == StepStatus.SCHEDULED)
        .with_for_update()
    )
    for step in pending:
        steps.finish(step, StepStatus.CANCELLED, now, reason=f"unenrolled: {reason}")
        if step.job_id is not None:
            scheduling.cancel_job(session=session, job_id=step.job_id, now=now)


def unenroll_all(
    *, session: UnitOfWork, lead_id: int, reason: str, now: datetime, keep: frozenset[int] = frozenset()
) -> int:
    """End every active enrollment of the lead with `reason` (but those in `keep`: they take a branch
    on what ended the others); returns how many."""
    active = list(
        session.scalars(
            sa.select(SequenceEnrollment)
            .where(
                SequenceEnrollment.lead_id == lead_id, SequenceEnrollment.status == EnrollmentStatus.ACTIVE
            )
            .with_for_update()
        )
    )
    active = [enrollment for enrollment in active if enrollment.id not in keep]
    for enrollment in active:
        unenroll(session=session, enrollment=enrollment, reason=reason, now=now)
    return len(active)


def _end(
    session: UnitOfWork, enrollment: SequenceEnrollment, status: str, reason: str, now: datetime
) -> None:
    enrollment.status = status
    enrollment.end_reason = reason
    enrollment.ended_at = now
    enrollment.next_step_at = None
