"""Automated messages to a lead (send_email, send_sms, a sequence's email or SMS) through the contact policy.

`policy.decide` is the pure answer; this module reads the facts it needs (the lead's flags and
timezone, the clinic's settings, how many automated messages the lead got on its local day) and
carries the answer out on the step: sent (DONE with the notification), held back (SKIPPED with
the reason), or moved out of quiet hours (rescheduled, the move noted on the step).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from jinja2 import TemplateError
from sqlalchemy.orm import Session

from app import clock
from app.activities import rules as activity_rules
from app.activities import service as activities
from app.activities.models import ActivityDirection, ActivityType
from app.auth.models import Clinic
from app.automation import actions, policy, steps
from app.automation.models import AutomationStep, StepStatus
from app.errors import ValidationFailed
from app.leads.models import Lead
from app.messaging import merge_fields
from app.messaging import service as message_templates
from app.notifications import outgoing as notifications
from app.notifications.models import Channel, Notification
from app.notifications.rules import local_day_bounds

# The notification kind of every automated message to a lead: what the daily cap counts.
MESSAGE_KIND = "automated_message"
CHANNEL_OF_ACTION = {"send_email": policy.EMAIL, "send_sms": policy.SMS}
SENT, SKIPPED, MOVED = "sent", "skipped", "moved"


def automated_messages_on(*, session: Session, lead: Lead, timezone: str, at: datetime) -> int:
    """How many automated messages the lead was sent on the local day of `at` (in `timezone`)."""
    start, end = local_day_bounds(policy.local_day(at, timezone), timezone)
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(
            Notification.lead_id == lead.id,
            Notification.kind == MESSAGE_KIND,
            Notification.channel.in_([Channel.EMAIL.value, Channel.SMS.value]),
            Notification.created_at >= start,
            Notification.created_at < end,
        )
    )


def automated_history(*, session: Session, lead: Lead) -> tuple[int, datetime | None]:
    """How many automated messages the lead was sent in all, and when the last one was made."""
    count, last = session.execute(
        sa.select(sa.func.count(), sa.func.max(Notification.created_at)).where(
            Notification.lead_id == lead.id,
            Notification.kind == MESSAGE_KIND,
            Notification.channel.in_([Channel.EMAIL.value, Channel.SMS.value]),
        )
    ).one()
    return count, clock.as_utc(last)


def check_policy(
    *, session: Session, lead: Lead, channel: str, at: datetime, automated: bool = True
) -> policy.Decision:
    """The contact policy's decision for a `channel` message to `lead` at `at`, from the stored facts.

    A message a person sends (`automated=False`) meets the same consent, address and quiet-hours
    checks, but not the limits on automated messages."""
    clinic = session.get(Clinic, lead.clinic_id)
    timezone = policy.timezone_for(lead.timezone, clinic.timezone)
    opted_out = lead.email_opt_out if channel == policy.EMAIL else lead.sms_opt_out
    address = lead.email if channel == policy.EMAIL else lead.phone
    limits = _limits(session, lead, clinic.settings, timezone, at) if automated else NO_LIMITS
    return policy.decide(
        channel=channel,
        do_not_contact=lead.do_not_contact,
        opted_out=opted_out,
        has_address=bool(address),
        at=at,
        timezone=timezone,
        quiet_hours=policy.quiet_hours_of(clinic.settings),
        **limits,
    )


# What a message a person sends meets: no caps, no interval.
NO_LIMITS = {"daily_cap": None, "sent_today": 0}


def _limits(session: Session, lead: Lead, settings: dict | None, timezone: str, at: datetime) -> dict:
    """The clinic's limits on automated messages to a lead, and the lead's counts, as `decide` takes them."""
    sent_total, last_sent_at = automated_history(session=session, lead=lead)
    return {
        "daily_cap": policy.daily_cap_of(settings),
        "sent_today": automated_messages_on(session=session, lead=lead, timezone=timezone, at=at),
        "total_cap": policy.total_cap_of(settings),
        "sent_total": sent_total,
        "min_interval": policy.min_interval_of(settings),
        "last_sent_at": last_sent_at,
    }


def send_message(
    *,
    session: Session,
    step: AutomationStep,
    lead: Lead,
    channel: str,
    subject: str | None,
    body: str,
    now: datetime,
    template_id: int | None = None,
) -> str:
    """Send the step's message if the policy allows; else skip or move the step. Returns what happened.

    With a `template_id`, the texts are the message template's as it is now."""
    if template_id is not None:
        try:
            template = message_templates.template_for(
                session=session, clinic_id=lead.clinic_id, template_id=template_id, channel=channel
            )
        except ValidationFailed as gone:  # deleted since the rule or sequence was saved
            steps.finish(step, StepStatus.SKIPPED, now, reason=gone.message)
            return SKIPPED
        subject, body = template.subject, template.body
    decision = check_policy(session=session, lead=lead, channel=channel, at=now)
    if decision.verdict == policy.SKIP:
        steps.finish(step, StepStatus.SKIPPED, now, reason=decision.reason, held_back_by="contact policy")
        return SKIPPED
    if decision.verdict == policy.MOVE:
        steps.reschedule(session=session, step=step, run_at=decision.to, note=decision.reason, now=now)
        return MOVED
    values = message_templates.merge_values(session=session, lead=lead)
    try:
        subject_text, body_text = merge_fields.merge(subject or "", values), merge_fields.merge(body, values)
    except TemplateError as error:  # validated when saved; a failure here must not retry forever
        steps.finish(step, StepStatus.FAILED, now, reason=f"the message text cannot be rendered: {error}")
        return SKIPPED
    notification = notifications.send_to_lead(
        session=session,
        lead=lead,
        channel=channel,
        subject=subject_text,
        body=body_text,
        dedupe_key=f"automation-step:{step.id}",
        now=now,
        kind=MESSAGE_KIND,
        context={"origin": steps.origin_of(step)},
    )
    _log_on_timeline(session, step, lead, channel, subject_text or body_text, notification, template_id, now)
    if template_id is not None:
        message_templates.record_use(
            session=session,
            template_id=template_id,
            lead=lead,
            notification_id=notification.id,
            channel=channel,
            sent_by="system",
            now=now,
        )
    steps.finish(step, StepStatus.DONE, now, notification_id=notification.id, channel=channel)
    return SENT


def _log_on_timeline(session, step, lead, channel, summary, notification, template_id, now) -> None:
    """The message on the lead's timeline (an OUTBOUND EMAIL/SMS by the system): coordinators see
    what automation said, and a reply within the window counts for follow-up analytics."""
    activities.record(
        session=session,
        lead=lead,
        type=ActivityType.EMAIL if channel == policy.EMAIL else ActivityType.SMS,
        at=now,
        direction=ActivityDirection.OUTBOUND,
        notes=f"Automated {channel}: {summary[:200]}",
        details={
            "notification_id": notification.id,
            "automation_step_id": step.id,
            **({"message_template_id": template_id} if template_id is not None else {}),
            **({activity_rules.BREAK_UP: True} if step.action.get("break_up") else {}),
        },
    )


def _sent_once_already(session: Session, step: AutomationStep) -> bool:
    """Whether the same rule already sent this kind of message to the lead (for `once_per_lead`)."""
    if step.rule_id is None:
        return False
    return (
        session.scalar(
            sa.select(AutomationStep.id)
            .where(
                AutomationStep.lead_id == step.lead_id,
                AutomationStep.rule_id == step.rule_id,
                AutomationStep.action_type == step.action_type,
                AutomationStep.status == StepStatus.DONE,
                AutomationStep.id != step.id,
            )
            .limit(1)
        )
        is not None
    )


def _run_message_action(*, session: Session, step: AutomationStep, lead: Lead, now: datetime) -> None:
    action = step.action
    if action.get("once_per_lead") and _sent_once_already(session, step):
        steps.finish(step, StepStatus.SKIPPED, now, reason="already sent to this lead once")
        return
    send_message(
        session=session,
        step=step,
        lead=lead,
        channel=CHANNEL_OF_ACTION[step.action_type],
        subject=action.get("subject"),
        body=action.get("body") or "",
        now=now,
        template_id=action.get("template_id"),
    )


def send_email(*, session: Session, step: AutomationStep, lead: Lead, now: datetime) -> None:
    _run_message_action(session=session, step=step, lead=lead, now=now)


def send_sms(*, session: Session, step: AutomationStep, lead: Lead, now: datetime) -> None:
    _run_message_action(session=session, step=step, lead=lead, now=now)


# Call tasks fall inside business hours: actions.within_business_hours is the one rule for both
# rule-made and sequence-made calls.
within_business_hours = actions.within_business_hours
