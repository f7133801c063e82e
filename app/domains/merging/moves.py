"""Moving what points at a merged lead to the lead it is merged into, in the merge's transaction.

Every table with a `lead_id` column is walked from the metadata (no list to keep when a domain adds
one); the few whose rows cannot simply move are handled first: one conversation per lead (the
messages move into the survivor's thread), one active sequence enrollment (the survivor's is kept),
one SLA clock per lead and kind, the automation steps and ledger jobs already planned, and the
further patients (numbered per lead; one already on the survivor by name is not added twice).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.automation import steps as automation_steps
from app.domains.automation.models import AutomationStep, EnrollmentStatus, SequenceEnrollment, StepStatus
from app.domains.conversations.models import RESOLVED, Conversation, ConversationMessage
from app.domains.tasks.sla.models import RUNNING, SlaClock, SlaState
from app.platform import scheduling
from app.platform.db import Base, UnitOfWork
from app.platform.scheduling.models import ScheduledJob

MERGED = "merged"  # the reason a stopped enrollment, a cancelled step or clock gives
# Handled one by one below; every other table with a lead_id column moves wholesale.
HANDLED = ("conversations", "sequence_enrollments", "sla_clocks", "lead_patients")


def move_everything(
    *, session: UnitOfWork, from_id: int, to_id: int, now: datetime, survivor_patient: tuple = (None, None)
) -> dict:
    """Move the rows of lead `from_id` to lead `to_id` (close what cannot move); counts by table.
    `survivor_patient`: the first and last name of lead `to_id`'s own patient."""
    kept_enrollments = _enrollments(session, from_id, to_id, now)
    _planned_work(session, from_id, to_id, kept_enrollments, now)
    _conversation(session, from_id, to_id, now)
    _sla_clocks(session, from_id, to_id, now)
    moved = {}
    patients = _patients(session, from_id, to_id, survivor_patient)
    if patients:
        moved["lead_patients"] = patients
    for table in Base.metadata.sorted_tables:
        column = table.c.get("lead_id")
        if column is None or column.primary_key or table.name in HANDLED:
            continue  # a table keyed by the lead (analytics' counted leads) keeps the merged lead's row
        result = session.execute(sa.update(table).where(column == from_id).values(lead_id=to_id))
        if result.rowcount:
            moved[table.name] = result.rowcount
    return moved


def _enrollments(session: UnitOfWork, from_id: int, to_id: int, now: datetime) -> set[int]:
    """Two active sequence enrollments would send the family two cadences: the survivor's is kept and
    the merged lead's are stopped; with none on the survivor, the merged lead's carry on there."""
    active = list(
        session.scalars(
            sa.select(SequenceEnrollment)
            .where(
                SequenceEnrollment.lead_id.in_([from_id, to_id]),
                SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
            )
            .with_for_update()
        )
    )
    survivor_has_one = any(e.lead_id == to_id for e in active)
    kept = set()
    for enrollment in (e for e in active if e.lead_id == from_id):
        if survivor_has_one:
            enrollment.status = EnrollmentStatus.UNENROLLED
            enrollment.ended_at = now
            enrollment.end_reason = MERGED
        else:
            kept.add(enrollment.id)
    session.execute(
        sa.update(SequenceEnrollment).where(SequenceEnrollment.lead_id == from_id).values(lead_id=to_id)
    )
    return kept


def _planned_work(session: UnitOfWork, from_id: int, to_id: int, kept_enrollments: set[int], now) -> None:
    """The merged lead's scheduled steps are cancelled (planned from its own facts; the survivor has
    its own), but those of an enrollment carried on, whose jobs follow it; then its pending jobs."""
    scheduled = list(
        session.scalars(
            sa.select(AutomationStep)
            .where(AutomationStep.lead_id == from_id, AutomationStep.status == StepStatus.SCHEDULED)
            .with_for_update()
        )
    )
    carried = [s for s in scheduled if s.enrollment_id in kept_enrollments]
    dropped = [s for s in scheduled if s.enrollment_id not in kept_enrollments]
    automation_steps.cancel_steps(session=session, steps=dropped, reason=MERGED, now=now)
    job_ids = [s.job_id for s in carried if s.job_id is not None]
    if job_ids:
        session.execute(
            sa.update(ScheduledJob)
            .where(ScheduledJob.id.in_(job_ids))
            .values(subject_id=to_id)
            .execution_options(synchronize_session=False)
        )
    scheduling.cancel(session=session, now=now, subject_type="lead", subject_id=from_id)


def _conversation(session: UnitOfWork, from_id: int, to_id: int, now: datetime) -> None:
    """One thread per lead: the merged lead's messages join the survivor's thread, in time order."""
    threads = {
        c.lead_id: c
        for c in session.scalars(
            sa.select(Conversation).where(Conversation.lead_id.in_([from_id, to_id])).with_for_update()
        )
    }
    theirs, ours = threads.get(from_id), threads.get(to_id)
    if theirs is None:
        return
    if ours is None:
        theirs.lead_id = to_id
        theirs.updated_at = now
        return
    session.execute(
        sa.update(ConversationMessage)
        .where(ConversationMessage.conversation_id == theirs.id)
        .values(conversation_id=ours.id)
        .execution_options(synchronize_session=False)
    )
    waiting = [t for t in (ours.waiting_since, theirs.waiting_since) if t is not None]
    ours.waiting_since = min(waiting) if waiting else None
    if theirs.last_message_at is not None and (
        ours.last_message_at is None or theirs.last_message_at > ours.last_message_at
    ):
        ours.last_message_at, ours.last_message_id = theirs.last_message_at, theirs.last_message_id
        ours.last_inbound_id = theirs.last_inbound_id or ours.last_inbound_id
        ours.last_inbound_channel = theirs.last_inbound_channel or ours.last_inbound_channel
    firsts = [t for t in (ours.first_inbound_at, theirs.first_inbound_at) if t is not None]
    ours.first_inbound_at = min(firsts) if firsts else None
    ours.updated_at = now
    # The emptied thread stays with the merged lead (one thread per lead), resolved.
    theirs.status, theirs.waiting_since, theirs.last_message_id = RESOLVED, None, None
    theirs.updated_at = now


def _sla_clocks(session: UnitOfWork, from_id: int, to_id: int, now: datetime) -> None:
    """The merged lead's running clocks stop (their timers were its jobs); a clock moves where the
    survivor has none of its kind, else stays with the merged lead."""
    clocks = list(session.scalars(sa.select(SlaClock).where(SlaClock.lead_id.in_([from_id, to_id]))))
    kinds = {c.kind for c in clocks if c.lead_id == to_id}
    for clock in (c for c in clocks if c.lead_id == from_id):
        if clock.status in RUNNING:
            clock.status = SlaState.CANCELLED
        if clock.kind not in kinds:
            clock.lead_id = to_id


def _patient_name(first: str | None, last: str | None) -> tuple[str, str]:
    return ((first or "").strip().casefold(), (last or "").strip().casefold())


def _patients(session: UnitOfWork, from_id: int, to_id: int, survivor_patient: tuple) -> int:
    """The merged lead's further patients join the survivor's after its own, in their order; one
    named as a patient the survivor already has (`survivor_patient`, its own first and last name, or
    a further one) stays with the merged lead. How many moved. Read and moved through the table
    (as the wholesale moves are): the rows are the leads domain's."""
    table = Base.metadata.tables["lead_patients"]
    rows = session.execute(
        sa.select(table.c.id, table.c.lead_id, table.c.position, table.c.first_name, table.c.last_name)
        .where(table.c.lead_id.in_([from_id, to_id]))
        .order_by(table.c.position)
    ).all()
    names = {_patient_name(*survivor_patient)}
    names |= {_patient_name(p.first_name, p.last_name) for p in rows if p.lead_id == to_id}
    position = max((p.position for p in rows if p.lead_id == to_id), default=0)
    moved = 0
    for patient in (p for p in rows if p.lead_id == from_id):
        name = _patient_name(patient.first_name, patient.last_name)
        if name in names:
            continue
        names.add(name)
        position += 1
        session.execute(
            sa.update(table).where(table.c.id == patient.id).values(lead_id=to_id, position=position)
        )
        moved += 1
    return moved
