"""Automatic stops: outreach ends when the lead answers, books a consultation, converts, is lost,
opts out, an email to them bounces for good, or it comes to meet a sequence's exit conditions.

An enrollment whose step waits for that reply or that booking is the exception: it takes the
branch for it (branching.py) while the lead's other sequences and outreach stop.

These are event consumers, not rules, on purpose: a clinic may tune its rules but not switch off
"stop messaging someone who replied" or "stop once they said STOP". Each stop is recorded where
the why-trail reads it: a cancelled step says why, an ended enrollment has its end_reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from app.domains.automation import steps
from app.domains.leads.models import Lead
from app.domains.sequences import branching, criteria
from app.domains.sequences import service as sequences
from app.platform.db import UnitOfWork
from app.platform.events.types import Delivered

if TYPE_CHECKING:
    from app.domains.activities.events import ActivityLogged
    from app.domains.leads.events import LeadUpdated
    from app.domains.outbound.events import MessageBounced
    from app.domains.pipeline.events import LeadStageChanged

OUTREACH_ACTIONS = ("send_email", "send_sms", "send_instagram", "send_whatsapp", "sequence_step")
OPT_OUT_FIELDS = ("do_not_contact", "email_opt_out", "sms_opt_out", "whatsapp_opt_out")
BOOKED_STAGE = "consultation_scheduled"


def _lead_of(session: UnitOfWork, event: Delivered) -> Lead | None:
    """The lead the event names (every event these consumers take names one: `lead_id`)."""
    lead_id = event.data.lead_id
    lead = session.get(Lead, lead_id) if lead_id is not None else None
    return lead if lead is not None and lead.clinic_id == event.clinic_id else None


def on_inbound_contact(*, session: UnitOfWork, event: Delivered[ActivityLogged], now: datetime) -> None:
    """An inbound call, email or SMS: unenroll the lead and cancel pending automated outreach."""
    activity = event.data
    if str(activity.direction or "").lower() != "inbound" or activity.contact is False:
        return  # a missed inbound call is not the lead speaking with the clinic (activities' rules)
    lead = _lead_of(session, event)
    if lead is None:
        return
    outcomes = branching.activity_outcomes(activity)
    keep = branching.waiting_for(
        session=session, lead_id=lead.id, outcomes=outcomes, call_outcome=activity.outcome
    )
    sequences.unenroll_all(session=session, lead_id=lead.id, reason=sequences.REPLIED, now=now, keep=keep)
    steps.cancel_pending_outreach(
        session=session, lead_id=lead.id, reason="the lead replied", now=now, action_types=OUTREACH_ACTIONS
    )
    if keep:  # after the cancel, which would cancel the branch's step too
        branching.take(
            session=session, lead=lead, outcomes=outcomes, event=event, now=now, call_outcome=activity.outcome
        )


def _on_closed(reason: str, why: str):
    def stop_everything(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
        lead = _lead_of(session, event)
        if lead is None:
            return
        sequences.unenroll_all(session=session, lead_id=lead.id, reason=reason, now=now)
        # Every pending step of the lead but those of this close (its won/lost rules' steps).
        steps.cancel_pending(session=session, lead_id=lead.id, reason=why, now=now, keep_event_id=event.id)

    stop_everything.__name__ = f"stop_on_{reason}"
    stop_everything.__doc__ = f"A {reason} lead: every pending automated step is cancelled ({why})."
    return stop_everything


on_converted = _on_closed(sequences.CONVERTED, "the lead converted")
on_lost = _on_closed(sequences.LOST, "the lead was lost")
on_deleted = _on_closed(sequences.DELETED, "the lead was deleted")


def on_opt_out(*, session: UnitOfWork, event: Delivered[LeadUpdated], now: datetime) -> None:
    """do_not_contact or a channel opt-out turned on: end the lead's sequences (pending one-off
    messages stay, and the policy skips them with the reason when they come due)."""
    changed = set(event.data.changed or ())
    lead = _lead_of(session, event)
    if lead is None or not any(name in changed and getattr(lead, name) for name in OPT_OUT_FIELDS):
        return
    sequences.unenroll_all(session=session, lead_id=lead.id, reason=sequences.OPTED_OUT, now=now)


def on_stage_changed(*, session: UnitOfWork, event: Delivered[LeadStageChanged], now: datetime) -> None:
    """A booked consultation is the goal a nurture sequence works for: reaching it ends them."""
    if event.data.new_stage != BOOKED_STAGE:
        return
    lead = _lead_of(session, event)
    if lead is None:
        return
    outcomes = [branching.BOOKED]
    keep = branching.waiting_for(session=session, lead_id=lead.id, outcomes=outcomes, call_outcome=None)
    sequences.unenroll_all(session=session, lead_id=lead.id, reason=sequences.BOOKED, now=now, keep=keep)
    if keep:
        branching.take(session=session, lead=lead, outcomes=outcomes, event=event, now=now)


def on_bounced(*, session: UnitOfWork, event: Delivered[MessageBounced], now: datetime) -> None:
    """A hard bounce: the address does not exist, so the sequence cannot go on as written."""
    if not event.data.hard:
        return
    lead = _lead_of(session, event)
    if lead is not None:
        sequences.unenroll_all(session=session, lead_id=lead.id, reason=sequences.BOUNCED, now=now)


def on_lead_changed(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """A lead's change may make it meet a sequence's exit conditions: that enrollment ends."""
    lead = _lead_of(session, event)
    if lead is None or not lead.is_open:
        return  # a closed lead's enrollments end with the close
    for enrollment in criteria.exited(session=session, lead=lead, now=now):
        sequences.unenroll(session=session, enrollment=enrollment, reason=criteria.EXITED, now=now)
