"""A sequence's entry and exit criteria: rules' conditions (groups all/any/not), evaluated by the
same pure functions of `app.domains.automation.rules` against the lead as it is now.

A lead that does not meet a sequence's entry conditions is not enrolled (a 409 naming the failing
conditions; a rule's or a bulk enrolment's row records it). An enrollment whose lead comes to meet
the exit conditions ends ("exit_conditions"): checked when a lead event is processed and before
each step runs, so a change nobody announced still stops the next message.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.automation import rules
from app.domains.automation.language.context import build_context
from app.domains.automation.models import EnrollmentStatus, SequenceEnrollment
from app.domains.sequences.models import Sequence
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict

if TYPE_CHECKING:
    from app.domains.leads.models import Lead

EXITED = "exit_conditions"  # an enrollment's end_reason
CHECK_EVENT = "sequence.criteria"  # the event type the conditions see (there is no event: a check)


def _evaluate(session: UnitOfWork, lead: Lead, conditions: list, now: datetime) -> rules.Evaluation:
    context = build_context(session=session, lead=lead, event_type=CHECK_EVENT, payload={}, at=now)
    return rules.evaluate(conditions, context)


def check_entry(*, session: UnitOfWork, lead: Lead, sequence: Sequence, now: datetime) -> None:
    """409 (entry_conditions_not_met) when the lead does not meet the sequence's entry conditions;
    the message names the conditions as evaluated (fields and values seen: no names or contacts)."""
    if not sequence.entry_conditions:
        return
    evaluation = _evaluate(session, lead, sequence.entry_conditions, now)
    if not evaluation.matched:
        raise Conflict(
            f"lead {lead.id} does not meet the entry conditions of sequence {sequence.id}: "
            + json.dumps(evaluation.conditions, default=str),
            code="entry_conditions_not_met",
        )


def meets_exit(*, session: UnitOfWork, lead: Lead, sequence: Sequence, now: datetime) -> bool:
    return bool(sequence.exit_conditions) and _evaluate(session, lead, sequence.exit_conditions, now).matched


def exited(*, session: UnitOfWork, lead: Lead, now: datetime) -> list[SequenceEnrollment]:
    """The lead's active enrollments whose sequence's exit conditions the lead meets, row-locked
    (only those: most lead changes meet none, and lock nothing)."""
    rows = session.execute(
        sa.select(SequenceEnrollment.id, Sequence)
        .join(Sequence, Sequence.id == SequenceEnrollment.sequence_id)
        .where(SequenceEnrollment.lead_id == lead.id, SequenceEnrollment.status == EnrollmentStatus.ACTIVE)
    ).all()
    leaving = [
        enrollment_id
        for enrollment_id, sequence in rows
        if meets_exit(session=session, lead=lead, sequence=sequence, now=now)
    ]
    if not leaving:
        return []
    return list(
        session.scalars(
            sa.select(SequenceEnrollment)
            .where(SequenceEnrollment.id.in_(leaving), SequenceEnrollment.status == EnrollmentStatus.ACTIVE)
            .with_for_update()
        )
    )
