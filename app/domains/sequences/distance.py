"""Sequences keep their distance: one active sequence per lead (unless the sequences allow more),
and the clinic's minimum gap between any two touches of a lead, a person's included.

An email or SMS step meets the gap in the contact policy (app/domains/lead_messages/policy.py); a call step is
a task for a person, and is held here, before its task is made, to the gap's end.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.automation import steps
from app.domains.automation.models import AutomationStep, EnrollmentStatus, SequenceEnrollment
from app.domains.lead_messages import policy, to_lead
from app.domains.sequences.models import Sequence
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict

if TYPE_CHECKING:
    from app.domains.leads.models import Lead


def check_enrollable(*, session: UnitOfWork, lead: Lead, sequence: Sequence) -> None:
    """409 (with its code) when the lead cannot be enrolled in the sequence now: the sequence is
    inactive, the lead closed or do-not-contact, already in it, or in another that allows no company."""
    if not sequence.active:
        raise Conflict(
            f"sequence {sequence.id} is inactive; activate it before enrolling leads",
            code="sequence_inactive",
        )
    if not lead.is_open:
        raise Conflict(
            f"lead {lead.id} is {lead.status.lower()}; only open leads can be enrolled", code="lead_closed"
        )
    if lead.do_not_contact:
        raise Conflict(f"lead {lead.id} is marked do not contact", code="do_not_contact")
    active = sa.select(SequenceEnrollment.id).where(
        SequenceEnrollment.sequence_id == sequence.id,
        SequenceEnrollment.lead_id == lead.id,
        SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
    )
    if session.scalar(active.limit(1)) is not None:
        raise already_enrolled(lead, sequence)
    check_one_active_sequence(session=session, lead=lead, sequence=sequence)


def already_enrolled(lead: Lead, sequence: Sequence) -> Conflict:
    return Conflict(f"lead {lead.id} is already enrolled in sequence {sequence.id}", code="already_enrolled")


def check_one_active_sequence(*, session: UnitOfWork, lead: Lead, sequence: Sequence) -> None:
    """409 when the lead is in another active sequence and this one or that one allows no company."""
    others = session.execute(
        sa.select(Sequence.id, Sequence.allow_concurrent)
        .join(SequenceEnrollment, SequenceEnrollment.sequence_id == Sequence.id)
        .where(
            SequenceEnrollment.lead_id == lead.id,
            SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
            Sequence.id != sequence.id,
        )
    ).all()
    for other_id, other_allows in others:
        if not (sequence.allow_concurrent and other_allows):
            raise Conflict(
                f"lead {lead.id} is already in active sequence {other_id}; a lead is in one active "
                "sequence at a time unless both sequences allow concurrent enrollments",
                code="already_enrolled",
            )


def held_for_the_gap(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> bool:
    """Move the step to the end of the clinic's minimum gap since the lead's last touch, if inside it."""
    settings = session.get(Clinic, lead.clinic_id).settings
    gap_end = to_lead.touch_gap_until(session=session, lead=lead, settings=settings, at=now)
    if gap_end is None:
        return False
    why = policy.gap_reason(policy.touch_gap_of(settings))
    steps.reschedule(session=session, step=step, run_at=gap_end, note=why, now=now)
    return True
