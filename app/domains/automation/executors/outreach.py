"""Automated messages to a lead (send_email, send_sms, send_instagram, send_whatsapp: a rule's or a
sequence's) through the contact policy.

The policy's decision and the message's road are messaging's (app/domains/lead_messages/to_lead.py); this
module carries the answer out on the step: sent (DONE with the notification), held back (SKIPPED
with the reason), or moved out of quiet hours (rescheduled, the move noted on the step).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.activities import rules as activity_rules
from app.domains.activities.service import SYSTEM
from app.domains.auth.models import Clinic
from app.domains.automation import steps
from app.domains.automation.models import AutomationStep, StepStatus
from app.domains.conversations import whatsapp
from app.domains.conversations.media import MediaRef
from app.domains.lead_messages import pause as outreach_pause
from app.domains.lead_messages import policy, to_lead
from app.domains.lead_messages import templates as message_templates
from app.domains.leads.models import Lead
from app.domains.outbound.models import WhatsAppTemplate
from app.domains.tasks import creation as task_creation
from app.domains.tasks.models import LeadTaskType
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed

CHANNEL_OF_ACTION = {
    "send_email": policy.EMAIL,
    "send_sms": policy.SMS,
    "send_instagram": policy.INSTAGRAM,
    "send_whatsapp": policy.WHATSAPP,
}
CHANNEL_NAMES = {policy.INSTAGRAM: "Instagram", policy.WHATSAPP: "WhatsApp"}
SENT, SKIPPED, MOVED = "sent", "skipped", "moved"


@dataclass(frozen=True)
class StepMessage:
    """What a step sends: its channel and texts, or the message template whose texts it takes."""

    channel: str
    subject: str | None
    body: str
    template_id: int | None = None
    instead_of: str | None = None  # a fallback's: why the step's own channel was not used
    media: MediaRef | None = None  # a sequence step's image or video (checked when it was saved)

    @classmethod
    def of(cls, action: dict, channel: str) -> StepMessage:
        """The message a step's action describes (a rule's send_email or send_sms, a sequence's step)."""
        url = action.get("media_url")
        return cls(
            channel=channel,
            subject=action.get("subject"),
            body=action.get("body") or "",
            template_id=action.get("template_id"),
            media=MediaRef(url=url, kind=action.get("message_type") or "image") if url else None,
        )


def send_message(
    *, session: UnitOfWork, step: AutomationStep, lead: Lead, message: StepMessage, now: datetime
) -> str:
    """Send the step's message if the policy allows; else skip or move the step. Returns what happened.

    With the message's `template_id`, the texts are the message template's as it is now."""
    channel, subject, body, template_id = message.channel, message.subject, message.body, message.template_id
    if template_id is not None:
        try:
            template = message_templates.template_for(
                session=session, clinic_id=lead.clinic_id, template_id=template_id, channel=channel
            )
        except ValidationFailed as gone:  # deleted since the rule or sequence was saved
            steps.finish(step, StepStatus.SKIPPED, now, reason=gone.message)
            return SKIPPED
        subject, body = template.subject, template.body
    not_after = _not_after(step)
    if not_after is not None and now >= not_after:  # a worker or a pause made it late
        steps.finish(step, StepStatus.SKIPPED, now, reason="the consultation has started: too late to remind")
        return SKIPPED
    held = outreach_pause.held_until(session.get(Clinic, lead.clinic_id).settings, now)
    if held is not None and not_after is not None and held >= not_after:
        reason = f"the clinic's outreach is paused until {held.isoformat()}, after the consultation starts"
        steps.finish(step, StepStatus.SKIPPED, now, reason=reason)
        return SKIPPED
    if held is not None:  # the same step, later: sent once after the pause, never lost
        steps.reschedule(session=session, step=step, run_at=held, note=outreach_pause.HELD_NOTE, now=now)
        return MOVED
    since = steps.held_since(step)
    overtaken = to_lead.overtaken_since(session=session, lead=lead, since=since) if since else None
    if overtaken is not None:  # e.g. held overnight by quiet hours, and the coordinator called at 07:30
        steps.finish(step, StepStatus.SKIPPED, now, reason=overtaken, held_back_by="contact policy")
        return SKIPPED
    # The follow-up pass releases its Instagram steps under Meta's human-agent policy (follow_up_pass.py).
    sent_as = policy.HUMAN_AGENT if step.action.get(policy.HUMAN_AGENT) else policy.AUTOMATED
    decision = to_lead.check_policy(session=session, lead=lead, channel=channel, at=now, sent_as=sent_as)
    fallback = fallback_channel(step, channel) if message.instead_of is None else None
    if decision.verdict == policy.SKIP and fallback and decision.reason in policy.channel_refusals(channel):
        # Opted out of this channel only (or no address for it): the step goes by its fallback,
        # through the policy like any message.
        instead = StepMessage(fallback, subject or fallback_subject(step), body, instead_of=decision.reason)
        return send_message(session=session, step=step, lead=lead, message=instead, now=now)
    context = {"origin": steps.origin_of(step)}
    if sent_as != policy.AUTOMATED:  # the send-time check keeps the pass's window (at_send.py)
        context["sent_as"] = sent_as
    if channel == policy.WHATSAPP and decision.verdict != policy.SKIP:
        body, template, closed = whatsapp.choose(
            session, lead.id, (body, WhatsAppTemplate.named_in(step.action)), now
        )
        if closed is not None and fallback and message.body:  # the step's fallback (sms) may take it
            instead = StepMessage(fallback, fallback_subject(step), message.body, instead_of=closed)
            return send_message(session=session, step=step, lead=lead, message=instead, now=now)
        if closed is not None:
            decision = policy.Decision(policy.SKIP, closed)
        elif template is not None:  # outside the window (or no text): the approved template goes
            try:
                template = to_lead.filled_template(session=session, lead=lead, template=template)
            except ValidationFailed as unrenderable:
                steps.finish(step, StepStatus.FAILED, now, reason=unrenderable.message)
                return SKIPPED
            body = whatsapp.shown(template)
            context.update(template.as_context())
    if decision.verdict == policy.SKIP:
        reason = decision.reason
        if message.instead_of:
            reason = f"{message.instead_of}; not by {channel} either: {decision.reason}"
        steps.finish(step, StepStatus.SKIPPED, now, reason=reason, held_back_by="contact policy")
        if channel == policy.INSTAGRAM or decision.reason.startswith(whatsapp.WINDOW_CLOSED):
            # The channel's window is closed to automation: only a person may still write.
            _reply_by_hand_task(session, step, lead, (channel, decision.reason), now)
        return SKIPPED
    if decision.verdict == policy.MOVE and not_after is not None and decision.to >= not_after:
        # Held past the visit, a reminder is noise: dropped, saying why.
        reason = f"{decision.reason}: held until {decision.to.isoformat()}, after the consultation starts"
        steps.finish(step, StepStatus.SKIPPED, now, reason=reason, held_back_by="contact policy")
        return SKIPPED
    if decision.verdict == policy.MOVE:
        steps.reschedule(session=session, step=step, run_at=decision.to, note=decision.reason, now=now)
        return MOVED
    try:
        sent = to_lead.send(
            session=session,
            lead=lead,
            now=now,
            message=to_lead.LeadMessage(
                channel=channel,
                subject=subject,
                body=body,
                dedupe_key=f"automation-step:{step.id}",
                kind=to_lead.MESSAGE_KIND,
                context=context,
                label=f"Automated {channel}",
                sent_by=SYSTEM,
                details={
                    "automation_step_id": step.id,
                    **({activity_rules.BREAK_UP: True} if step.action.get("break_up") else {}),
                },
                template_id=template_id,
                merge=step.action.get("merge"),
                bulk=steps.is_campaign(step),  # a rule's message (speed to lead) goes first
                media=message.media,
            ),
        )
    except ValidationFailed as unrenderable:  # validated when saved; a failure here must not retry forever
        steps.finish(step, StepStatus.FAILED, now, reason=unrenderable.message)
        return SKIPPED
    fell_back = {"fallback": f"sent by {channel}: {message.instead_of}"} if message.instead_of else {}
    steps.finish(
        step, StepStatus.DONE, now, notification_id=sent.notification.id, channel=channel, **fell_back
    )
    return SENT


OTHER_CHANNEL = {policy.EMAIL: policy.SMS, policy.SMS: policy.EMAIL, policy.WHATSAPP: policy.SMS}


def fallback_channel(step: AutomationStep, channel: str) -> str | None:
    """The step's fallback channel (a sequence step's or a rule's send action's), if it names the
    other one."""
    named = step.action.get("fallback_channel")
    return named if named is not None and named == OTHER_CHANNEL.get(channel) else None


def fallback_subject(step: AutomationStep) -> str:
    """An SMS step's text gone by email needs a subject: the step's own, else the clinic's name."""
    return step.action.get("fallback_subject") or "A message from {{ clinic_name }}"


def _reply_by_hand_task(
    session: UnitOfWork, step: AutomationStep, lead: Lead, why: tuple[str, str], now: datetime
) -> None:
    """The lead's owner picks up what automation may not send outside a channel's window: a reply by
    hand (on Instagram within Meta's 7-day human agent window; on WhatsApp an approved template), or
    another way to reach the family."""
    channel, reason = why
    name = CHANNEL_NAMES[channel]
    task_creation.create_system_task(
        session=session,
        lead=lead,
        now=now,
        task=task_creation.SystemTask(
            title=f"Follow up by hand: an automated {name} message was not sent",
            type=LeadTaskType.FOLLOW_UP,
            description=f"Not sent automatically: {reason}. Reply on {name}, or reach them another way.",
            due_at=now,
            dedupe_key=f"{channel}-window:{step.id}",
            origin=steps.origin_of(step),
        ),
    )


def _not_after(step: AutomationStep) -> datetime | None:
    """The time a step's message is pointless after (a reminder: its consultation's start)."""
    not_after = step.action.get("not_after")
    return datetime.fromisoformat(not_after) if not_after else None


def _sent_once_already(session: UnitOfWork, step: AutomationStep) -> bool:
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


def _sent_within(session: UnitOfWork, step: AutomationStep, hours: int, now: datetime) -> bool:
    """Whether the same rule's message went to the lead in the last `hours`, or one is on its way
    (a step waiting for its time, e.g. moved out of quiet hours): for `once_per_hours`.

    The lead's row is locked first, so two workers running such steps of one lead take turns."""
    if step.rule_id is None:
        return False
    session.execute(sa.select(Lead.id).where(Lead.id == step.lead_id).with_for_update())
    recent = sa.and_(
        AutomationStep.status == StepStatus.DONE,
        AutomationStep.finished_at >= now - timedelta(hours=hours),
    )
    stmt = sa.select(AutomationStep.id).where(
        AutomationStep.lead_id == step.lead_id,
        AutomationStep.rule_id == step.rule_id,
        AutomationStep.action_type == step.action_type,
        AutomationStep.id != step.id,
        sa.or_(recent, AutomationStep.status == StepStatus.SCHEDULED),
    )
    return session.scalar(stmt.limit(1)) is not None


def _run_message_action(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    action = step.action
    if action.get("once_per_lead") and _sent_once_already(session, step):
        steps.finish(step, StepStatus.SKIPPED, now, reason="already sent to this lead once")
        return
    hours = action.get("once_per_hours")
    if hours and _sent_within(session, step, hours, now):
        reason = f"already sent to this lead within {hours} hours, or on its way"
        steps.finish(step, StepStatus.SKIPPED, now, reason=reason)
        return
    send_message(
        session=session,
        step=step,
        lead=lead,
        message=StepMessage.of(action, CHANNEL_OF_ACTION[step.action_type]),
        now=now,
    )


def send_email(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    _run_message_action(session=session, step=step, lead=lead, now=now)


def send_sms(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    _run_message_action(session=session, step=step, lead=lead, now=now)


def send_instagram(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    _run_message_action(session=session, step=step, lead=lead, now=now)


def send_whatsapp(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    _run_message_action(session=session, step=step, lead=lead, now=now)
