"""The follow-up cadence: after each failed attempt to reach a lead, the next one is planned; any
sign of engagement ends it, cancels a planned break-up and withdraws the "mark lost" suggestion.

- A call logged as voicemail, no answer or wrong number is a failed attempt at once; a text or
  email is one when its reply window passes (a `automation.reply_window` ledger job re-checks it
  then). Each failed attempt that counts (automation/attempts.py) is an `AttemptFailed` event.
- On it the clinic's cadence (settings.cadence: `touches`, each `after_business_days` and the
  `channels` to use) plans the next touch as automated steps: a call task and/or a message, due
  that many business days later, re-checked when they run. After the last touch fails, the
  break-up rule (trigger lead.attempt_failed) takes over.
- Engagement (a reply, an inbound or answered call, a booking, a check-in, a forward stage move)
  cancels the cadence's and the break-up's pending steps and withdraws "mark lost", each saying why
  on the why-trail.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.automation import steps
from app.domains.automation.attempts import (
    business_days_later,
    cadence_of,
    clinic_of,
    is_call,
    since_last_contact,
)
from app.domains.automation.events import AttemptFailed
from app.domains.automation.models import AutomationStep, StepStatus
from app.domains.leads.models import Lead
from app.domains.pipeline.models import BOOKED_STAGE, PipelineStage
from app.platform.db import UnitOfWork
from app.platform.events import service as events
from app.platform.events.types import Delivered
from app.platform.scheduling import service as scheduling

if TYPE_CHECKING:
    from app.domains.activities.events import ActivityLogged

REPLY_WINDOW_KIND = "automation.reply_window"
MARK_LOST = "mark_lost"
CADENCE_TEXT = (
    "Hi {{ first_name }}, {{ clinic_name }} here: we tried to reach you about your visit. Reply to "
    "this text or call us when it suits you, or book a time yourself: {{ booking_link }}"
)


def _open_lead(session: UnitOfWork, event: Delivered) -> Lead | None:
    lead = session.get(Lead, event.data.lead_id)
    if lead is None or lead.clinic_id != event.clinic_id or lead.deleted_at is not None:
        return None
    return lead if lead.is_open else None


def on_activity(*, session: UnitOfWork, event: Delivered[ActivityLogged], now: datetime) -> None:
    """Event consumer of `activity.logged`: a failed call counts at once; a text or email sent starts
    its reply window; a contact ends the cadence."""
    activity = event.data
    lead = _open_lead(session, event)
    if lead is None:
        return
    if activity.contact:
        end_on_engagement(session=session, lead=lead, why="the family was in touch", now=now)
    elif activity.attempt and is_call(activity.type):
        count_failed_attempt(session=session, lead=lead, activity_id=activity.activity_id, now=now)
    elif activity.attempt:
        days = cadence_of(_clinic(session, lead))["reply_window_business_days"]
        _watch_reply_window(session, lead, activity.activity_id, now, days)


def _watch_reply_window(session: UnitOfWork, lead: Lead, activity_id: int, now: datetime, days: int) -> None:
    """A ledger job when the message's reply window would pass (from now: it goes at once or soon;
    when it fires it reads when the message actually went and waits again if need be)."""
    due = business_days_later(_clinic(session, lead), now, days)
    session.schedule(
        scheduling.Job(
            kind=REPLY_WINDOW_KIND,
            due_at=due,
            dedupe_key=f"reply-window:activity:{activity_id}:{due.isoformat()}",
            now=now,
            clinic_id=lead.clinic_id,
            subject_type="lead",
            subject_id=lead.id,
            payload={"activity_id": activity_id},
        )
    )


def _clinic(session: UnitOfWork, lead: Lead):
    return clinic_of(session, lead.clinic_id)


def reply_window_passed(*, session: UnitOfWork, job, now: datetime) -> None:
    """The ledger handler of `automation.reply_window`: the message's window has passed with no
    answer (then it is a failed attempt), or has not yet (it went later than planned: wait again)."""
    lead = session.get(Lead, job.subject_id)
    if lead is None or lead.deleted_at is not None or not lead.is_open:
        return
    activity_id = job.payload["activity_id"]
    attempts, _ = since_last_contact(session, lead.id, now)
    attempt = next((a for a in attempts if a.activity_id == activity_id), None)
    if attempt is None:
        return  # a contact since: not a failed attempt
    if attempt.failed_at is None or attempt.failed_at > now:
        days = cadence_of(_clinic(session, lead))["reply_window_business_days"]
        _watch_reply_window(session, lead, activity_id, attempt.failed_at or now, days)
        return
    count_failed_attempt(session=session, lead=lead, activity_id=activity_id, now=now)


def count_failed_attempt(*, session: UnitOfWork, lead: Lead, activity_id: int, now: datetime) -> None:
    """The attempt failed: if it counts (the first of its business day), an AttemptFailed event
    naming how many in a row it makes (itself and those before it: attempts logged late, or
    processed together, each make their own number)."""
    if lead.pipeline_stage == BOOKED_STAGE:
        return  # a family with a visit booked is not chased: its confirmation and reminders are no attempts
    attempts, _ = since_last_contact(session, lead.id, now)
    position = next((i for i, a in enumerate(attempts) if a.activity_id == activity_id and a.counted), None)
    if position is None:
        return
    events.emit(
        session=session,
        event=AttemptFailed(
            lead_id=lead.id,
            activity_id=activity_id,
            failed_attempts=sum(1 for a in attempts[: position + 1] if a.counted),
        ),
        subject=events.Subject.lead(lead),
        now=now,
    )


def plan_next_attempt(*, session: UnitOfWork, event: Delivered[AttemptFailed], now: datetime) -> None:
    """Event consumer of `lead.attempt_failed`: the cadence's next touch, planned once per spell."""
    lead = _open_lead(session, event)
    if lead is None:
        return
    clinic = _clinic(session, lead)
    touches = cadence_of(clinic)["touches"]
    failed = event.data.failed_attempts
    if not 1 <= failed <= len(touches):
        return  # past the last touch: the break-up rule's turn
    touch = touches[failed - 1]
    _, last_contact = since_last_contact(session, lead.id, now)
    run_at = business_days_later(clinic, now, touch["after_business_days"])
    for channel in touch["channels"]:
        step = steps.record(
            session=session,
            lead=lead,
            planned=steps.PlannedStep(
                action=_touch_action(channel, failed + 1, now),
                run_at=run_at,
                dedupe_key=f"cadence:lead:{lead.id}:after:{last_contact or 0}:attempt:{failed + 1}:{channel}",
                origin={"event_id": event.id, "event_type": event.type},
                result={
                    "reason": f"{failed} failed attempt(s) in a row: the cadence's attempt {failed + 1}, "
                    f"{touch['after_business_days']} business day(s) later"
                },
            ),
            now=now,
        )
        if step is not None:
            steps.plan(session=session, step=step, now=now)


def _touch_action(channel: str, attempt: int, now: datetime) -> dict:
    if channel == "call":
        return {
            "type": "create_task",
            "title": f"Call again: attempt {attempt}",
            "task_type": "CALL",
            "priority": "HIGH",
            "description": "The last attempt went unanswered: try again.",
            "assignee": {"kind": "lead_owner"},
            "recheck": {"no_contact_since_event": True},
            "event_at": now.isoformat(),
            "cadence": attempt,
        }
    if channel == "email":
        return {
            "type": "send_email",
            "subject": "Following up from {{ clinic_name }}",
            "body": CADENCE_TEXT,
            "cadence": attempt,
        }
    return {"type": "send_sms", "body": CADENCE_TEXT, "cadence": attempt}


# --- engagement ends it ---------------------------------------------------------------------------


def end_on_engagement(*, session: UnitOfWork, lead: Lead, why: str, now: datetime) -> None:
    """Cancel the cadence's and the break-up's pending steps and withdraw "mark lost", saying why."""
    pending = session.scalars(
        sa.select(AutomationStep)
        .where(AutomationStep.lead_id == lead.id, AutomationStep.status == StepStatus.SCHEDULED)
        .with_for_update()
    )
    ending = [s for s in pending if s.action.get("cadence") or s.action.get("break_up")]
    steps.cancel_steps(session=session, steps=ending, reason=f"engagement: {why}", now=now)
    if lead.suggested_action != MARK_LOST:
        return
    lead.suggested_action, lead.updated_at = None, now
    suggested = session.scalar(
        sa.select(AutomationStep)
        .where(
            AutomationStep.lead_id == lead.id,
            AutomationStep.action_type == "suggest",
            AutomationStep.status == StepStatus.DONE,
        )
        .order_by(AutomationStep.id.desc())
        .limit(1)
    )
    if suggested is not None:
        withdrawn = {"at": now.isoformat(), "why": f"engagement: {why}"}
        suggested.result = {**suggested.result, "withdrawn": withdrawn}


def on_booked(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """Event consumer of `consultation.scheduled`: a booking (the family's or staff's) is engagement."""
    lead = _open_lead(session, event)
    if lead is not None:
        end_on_engagement(session=session, lead=lead, why="a consultation was booked", now=now)


def on_attended(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """Event consumer of `consultation.attended`: a check-in is engagement."""
    lead = _open_lead(session, event)
    if lead is not None:
        end_on_engagement(session=session, lead=lead, why="the family checked in", now=now)


def on_stage_changed(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """Event consumer of `lead.stage_changed`: a move forward on the board is engagement."""
    lead = _open_lead(session, event)
    if lead is None or event.data.previous_stage is None:
        return
    positions = dict(
        session.execute(
            sa.select(PipelineStage.slug, PipelineStage.position).where(
                PipelineStage.clinic_id == lead.clinic_id,
                PipelineStage.slug.in_([event.data.previous_stage, event.data.new_stage]),
            )
        ).all()
    )
    before, after = positions.get(event.data.previous_stage), positions.get(event.data.new_stage)
    if before is not None and after is not None and after > before:
        end_on_engagement(
            session=session, lead=lead, why=f"the lead moved forward to {event.data.new_stage}", now=now
        )
