"""A step's fallback channel after its message failed for good: an email that bounced (SendGrid's
bounce or drop, an SMTP 5xx), a text to a number that cannot take one (an invalid number, a
landline: Twilio's error codes below), a WhatsApp message WhatsApp refused for good (outside its
window, not a WhatsApp number). The step names the channel (`fallback_channel`: email → sms, sms →
email, whatsapp → sms; a sequence step's or a rule's send action's); the fallback meets the consent and
contact policy like any message, in the step's lane, once: its dedupe key is the step's, so a
bounce reported twice sends nothing more, and a step that fell back never falls back again. If the
fallback is refused too (opted out of it as well), nothing goes and the step says why.

The opt-out of one channel known when the step runs is outreach.py's: the step goes by the other
channel at once."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.activities.service import SYSTEM
from app.domains.automation import steps
from app.domains.automation.executors import outreach
from app.domains.automation.models import AutomationStep, StepStatus
from app.domains.lead_messages import policy, to_lead
from app.domains.lead_messages import templates as message_templates
from app.domains.leads.models import Lead
from app.domains.outbound.models import Notification
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.events.types import Delivered

if TYPE_CHECKING:
    from app.domains.outbound.events import MessageBounced

STEP_MESSAGE = "automation-step:"  # how a step's message's dedupe key starts (outreach.send_message)
# Twilio's errors that say the number will never take a text: 21211 invalid 'To' number, 21614 not
# a mobile number, 21612 no route to it, 30005 unknown handset, 30006 landline or unreachable carrier.
# (30003, a handset switched off, and 30007, carrier filtering, may pass: not permanent.)
SMS_PERMANENT_CODES = frozenset({"21211", "21614", "21612", "30005", "30006"})
# WhatsApp's that say it will not reach the family: 63016 outside the 24-hour window (a free-form
# message), 63003 not a WhatsApp number, 63024 an invalid recipient, 21211 an invalid 'To' number.
WHATSAPP_PERMANENT_CODES = frozenset({"63016", "63003", "63024", "21211"})
WHY = {
    policy.EMAIL: "the email bounced",
    policy.SMS: "the number cannot take texts",
    policy.WHATSAPP: "WhatsApp could not reach the family",
}


def on_failed(*, session: UnitOfWork, event: Delivered[MessageBounced], now: datetime) -> None:
    """`message.bounced` (an email bounced, a text failed for good): the step whose message it was
    goes by its fallback channel, if it names one."""
    bounced = event.data
    if not permanent(bounced):
        return
    step = _step_of_message(session, bounced.notification_id, event.clinic_id)
    if step is None or step.result.get("notification_id") != bounced.notification_id:
        return  # not a step's message, or a fallback's own message failing
    first = step.result.get("channel")
    second = outreach.fallback_channel(step, first)
    if second is None or "fallback" in step.result:
        return
    lead = session.get(Lead, step.lead_id)
    why = WHY.get(first, f"the {first} failed")
    if not steps.may_run_on(step, lead):
        _refused(step, second, why, "the lead is no longer open", now)
        return
    overtaken = to_lead.overtaken_since(session=session, lead=lead, since=step.finished_at or step.run_at)
    if overtaken is not None:  # a late bounce, and the lead answered (or was called) meanwhile
        _refused(step, second, why, overtaken, now)
        return
    _send_instead(session, step, lead, (first, second, why), now)


def permanent(bounced: MessageBounced) -> bool:
    """Whether a failure report means the channel cannot reach the lead (not a passing refusal)."""
    if bounced.channel == policy.SMS:
        return str(bounced.error_code or "") in SMS_PERMANENT_CODES
    if bounced.channel == policy.WHATSAPP:
        return str(bounced.error_code or "") in WHATSAPP_PERMANENT_CODES
    return bounced.hard is True or bounced.permanent is True


def _step_of_message(session: UnitOfWork, notification_id, clinic_id: int) -> AutomationStep | None:
    if not isinstance(notification_id, int):
        return None
    dedupe_key = session.scalar(
        sa.select(Notification.dedupe_key).where(
            Notification.id == notification_id, Notification.clinic_id == clinic_id
        )
    )
    step_id = (dedupe_key or "").removeprefix(STEP_MESSAGE)
    if not (dedupe_key or "").startswith(STEP_MESSAGE) or not step_id.isdigit():
        return None
    stmt = sa.select(AutomationStep).where(AutomationStep.id == int(step_id))
    return session.scalar(stmt.with_for_update())  # a bounce reported twice at once: one after the other


def _send_instead(
    session: UnitOfWork, step: AutomationStep, lead: Lead, channels: tuple, now: datetime
) -> None:
    """The step's message by `second` (its texts, a template's if it had one), once."""
    first, second, why = channels
    subject, body = step.action.get("subject"), step.action.get("body") or ""
    if step.action.get("template_id") is not None:
        try:
            template = message_templates.template_for(
                session=session,
                clinic_id=lead.clinic_id,
                template_id=step.action["template_id"],
                channel=first,
            )
        except ValidationFailed as gone:
            _refused(step, second, why, gone.message, now)
            return
        subject, body = template.subject, template.body
    if not body.strip():  # a WhatsApp step that was only its approved template has no text to send
        _refused(step, second, why, "the step has no text of its own (only a WhatsApp template)", now)
        return
    decision = to_lead.check_policy(session=session, lead=lead, channel=second, at=now)
    if decision.verdict == policy.SKIP:
        _refused(step, second, why, decision.reason, now)
        return
    try:
        sent = to_lead.send(
            session=session,
            lead=lead,
            now=now,
            message=to_lead.LeadMessage(
                channel=second,
                subject=subject or outreach.fallback_subject(step),
                body=body,
                dedupe_key=f"{STEP_MESSAGE}{step.id}:fallback",
                kind=to_lead.MESSAGE_KIND,
                context={"origin": steps.origin_of(step)},
                label=f"Automated {second} (after the {first} failed)",
                sent_by=SYSTEM,
                details={"automation_step_id": step.id, "fallback_for": step.result.get("notification_id")},
                not_before=decision.to if decision.verdict == policy.MOVE else None,  # quiet hours: held
                held_by=decision.held_by,
                merge=step.action.get("merge"),
                bulk=steps.is_campaign(step),  # the step's own lane
            ),
        )
    except ValidationFailed as unrenderable:
        _refused(step, second, why, unrenderable.message, now)
        return
    step.result = {
        **step.result,
        "fallback": f"sent by {second} after {why}",
        "fallback_channel": second,
        "fallback_notification_id": sent.notification.id,
    }


def _refused(step: AutomationStep, second: str, why: str, reason: str, now: datetime) -> None:
    """Neither channel reached the lead: the step failed, saying why."""
    steps.finish(
        step,
        StepStatus.FAILED,
        now,
        reason=f"{why}; not sent by {second} either: {reason}",
        fallback=f"not sent by {second}: {reason}",
        fallback_channel=second,
    )
