"""Branches: the event a waiting step waits for (or its timeout) chooses the enrollment's next step.

Outcomes and the events they are made of:
- replied: an inbound call, email or SMS (activity.logged, inbound, a contact) - stops.py asks here
  first, so an enrollment waiting for a reply branches while the lead's other sequences stop;
- email_opened: email.opened by a person (a mail proxy's machine open does not count);
- link_clicked: link.clicked on one of the lead's messages;
- consultation_booked: the lead moved to consultation_scheduled (stops.py asks here first, as for
  a reply);
- call_logged: a call logged with an outcome (activity.logged, PHONE_CALL), with one of the wait's
  `call_outcomes` if it names any;
- timeout: the wait's ledger job, when nothing came in time.

Every transition runs in a ledger job (the event's processing, or the wait's own job), takes the
wait row's lock and acts only while the wait is scheduled: a second delivery of the event, a
second event, or the timeout after an event (and an event after the timeout) changes nothing. The
branch's step is scheduled with a dedupe key of its own (service.schedule_step), once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.activities.models import ActivityType
from app.domains.automation import steps
from app.domains.automation.models import AutomationStep, EnrollmentStatus, SequenceEnrollment, StepStatus
from app.domains.engagement.events import EmailOpened, LinkClicked
from app.domains.leads.models import Lead
from app.domains.outbound.models import Notification
from app.domains.sequences import graph, waits
from app.domains.sequences import service as sequences
from app.domains.sequences.models import Sequence
from app.platform.db import UnitOfWork
from app.platform.events.types import Delivered
from app.platform.scheduling import service as scheduling

if TYPE_CHECKING:
    from app.domains.activities.events import ActivityLogged

REPLIED, OPENED, CLICKED = "replied", "email_opened", "link_clicked"
BOOKED, CALL_LOGGED = "consultation_booked", "call_logged"
ENGAGEMENT = {EmailOpened.NAME: OPENED, LinkClicked.NAME: CLICKED}


@dataclass(frozen=True)
class Outcome:
    """What ended a wait: an outcome's name, and the event that brought it (None for the timeout)."""

    name: str
    event_id: int | None = None


def _pending_waits(session: UnitOfWork, lead_id: int) -> list[tuple[SequenceEnrollment, AutomationStep]]:
    """The lead's active enrollments that wait, with their wait; both row-locked, enrollments first
    (the order the stops lock them in). A lead with no wait pending (most) locks nothing."""
    any_wait = sa.select(AutomationStep.id).where(
        AutomationStep.lead_id == lead_id,
        AutomationStep.status == StepStatus.SCHEDULED,
        AutomationStep.action_type == waits.WAIT_ACTION,
    )
    if session.scalar(any_wait.limit(1)) is None:
        return []
    enrollments = {
        enrollment.id: enrollment
        for enrollment in session.scalars(
            sa.select(SequenceEnrollment)
            .where(
                SequenceEnrollment.lead_id == lead_id, SequenceEnrollment.status == EnrollmentStatus.ACTIVE
            )
            .with_for_update()
        )
    }
    if not enrollments:
        return []
    pending = session.scalars(
        sa.select(AutomationStep)
        .where(
            AutomationStep.enrollment_id.in_(list(enrollments)),
            AutomationStep.action_type == waits.WAIT_ACTION,
            AutomationStep.status == StepStatus.SCHEDULED,
        )
        .order_by(AutomationStep.id)
        .with_for_update()
    )
    return [(enrollments[wait.enrollment_id], wait) for wait in pending]


def waiting_for(
    *, session: UnitOfWork, lead_id: int, outcomes: list[str], call_outcome: str | None
) -> frozenset[int]:
    """The lead's enrollments that wait for one of `outcomes` (`call_outcome`: a logged call's): they
    branch on it, not stop."""
    return frozenset(
        enrollment.id
        for enrollment, wait in _pending_waits(session, lead_id)
        if any(waits.accepts(wait, outcome, call_outcome) for outcome in outcomes)
    )


def take(
    *,
    session: UnitOfWork,
    lead: Lead,
    outcomes: list[str],
    event: Delivered,
    now: datetime,
    call_outcome: str | None = None,
) -> int:
    """Each of the lead's waits that takes one of `outcomes` (the first it takes, in that order) goes
    on along that outcome's path; returns how many branched. `call_outcome`: a logged call's
    (activity.logged), which a wait for a call may name."""
    branched = 0
    for enrollment, wait in _pending_waits(session, lead.id):
        outcome = next((name for name in outcomes if waits.accepts(wait, name, call_outcome)), None)
        if outcome is not None:
            _branch(session, wait, enrollment, lead, Outcome(outcome, event.id), now)
            branched += 1
    return branched


def _branch(
    session: UnitOfWork,
    wait: AutomationStep,
    enrollment: SequenceEnrollment,
    lead: Lead,
    outcome: Outcome,
    now: datetime,
) -> None:
    steps.finish(wait, StepStatus.DONE, now, outcome=outcome.name, event_id=outcome.event_id)
    if wait.job_id is not None and outcome.event_id is not None:
        scheduling.cancel_job(session=session, job_id=wait.job_id, now=now)  # the timeout is moot
    sequence = session.get(Sequence, enrollment.sequence_id)
    via = {
        "after": wait.action.get("key"),
        "outcome": outcome.name,
        "event_id": outcome.event_id,
        "at": now.isoformat(),
    }
    index = waits.next_index(sequence.steps, wait, outcome.name)
    sequences.schedule_step(session, enrollment, lead, index=index, now=now, via=via)


def on_timeout(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    """The executor of `sequence_wait` steps: nothing came in time, so the timeout's path."""
    enrollment = session.scalar(
        sa.select(SequenceEnrollment).where(SequenceEnrollment.id == step.enrollment_id).with_for_update()
    )
    if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
        steps.finish(step, StepStatus.SKIPPED, now, reason="the enrollment has ended")
        return
    _branch(session, step, enrollment, lead, Outcome(graph.TIMEOUT), now)


def _lead_of(session: UnitOfWork, event: Delivered) -> Lead | None:
    """The event's lead: named in the event or as the subject, or the lead of the message it names."""
    lead_id = getattr(event.data, "lead_id", None) or (
        event.subject_id if event.subject_type == "lead" else None
    )
    notification_id = getattr(event.data, "notification_id", None)
    if lead_id is None and notification_id is not None:
        lead_id = session.scalar(sa.select(Notification.lead_id).where(Notification.id == notification_id))
    lead = session.get(Lead, lead_id) if lead_id is not None else None
    return lead if lead is not None and lead.clinic_id == event.clinic_id else None


def on_engagement(*, session: UnitOfWork, event: Delivered[EmailOpened | LinkClicked], now: datetime) -> None:
    """email.opened (by a person) and link.clicked: the waits for them branch."""
    if isinstance(event.data, EmailOpened) and event.data.machine:
        return  # a mail proxy fetched the message (Apple Mail privacy): nobody read it
    lead = _lead_of(session, event)
    if lead is not None:
        take(session=session, lead=lead, outcomes=[ENGAGEMENT[event.type]], event=event, now=now)


def activity_outcomes(activity: ActivityLogged) -> list[str]:
    """The outcomes a logged activity is: a reply (inbound contact), a logged call (with an outcome)."""
    found = []
    if str(activity.direction or "").lower() == "inbound" and activity.contact is not False:
        found.append(REPLIED)
    if activity.type == ActivityType.PHONE_CALL and activity.outcome:
        found.append(CALL_LOGGED)
    return found


def on_call_logged(*, session: UnitOfWork, event: Delivered[ActivityLogged], now: datetime) -> None:
    """A call logged by the clinic (an inbound one is handled with the reply, by stops.py)."""
    outcomes = [CALL_LOGGED] if CALL_LOGGED in activity_outcomes(event.data) else []
    lead = _lead_of(session, event) if outcomes else None
    if lead is not None:
        take(
            session=session,
            lead=lead,
            outcomes=outcomes,
            event=event,
            now=now,
            call_outcome=event.data.outcome,
        )
