"""A one-off email or SMS from a person to a lead (POST /api/leads/:id/messages).

The same road as automation's messages, minus the automated-message limits: the contact policy
(do-not-contact, the channel's opt-out, an address, quiet hours: the message waits for their end),
the renderer of the merge fields, the notifications ledger (rendered once, delivered by the
worker, once per delivery key), and an OUTBOUND activity on the timeline, so it counts as an
attempt (app/activities/rules.py) like a call nobody answered.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from jinja2 import TemplateError
from sqlalchemy.orm import Session

from app.activities import service as activities
from app.activities.models import ActivityDirection, ActivityType
from app.audit import service as audit
from app.auth.roles import Actor
from app.automation import outreach, policy
from app.errors import Conflict, ValidationFailed
from app.leads import service as leads
from app.messaging import merge_fields
from app.messaging import service as templates
from app.messaging.models import EMAIL
from app.notifications import outgoing as notifications

MANUAL_KIND = "manual_message"


def send_message(*, session: Session, actor: Actor, lead_id: int, data: dict, now: datetime) -> dict:
    """Queue the message (now, or at the end of quiet hours) and log it; 409 when the policy refuses."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    leads.ensure_not_converted(lead)
    channel, template_id = data["channel"], data.get("template_id")
    subject, body = data.get("subject"), data.get("body")
    if template_id is not None:
        template = templates.template_for(
            session=session, clinic_id=actor.clinic_id, template_id=template_id, channel=channel
        )
        subject, body = template.subject, template.body
    decision = outreach.check_policy(session=session, lead=lead, channel=channel, at=now, automated=False)
    if decision.verdict == policy.SKIP:
        raise Conflict(f"the contact policy holds this message back: {decision.reason}")
    subject_text, body_text = _rendered(session, lead, subject, body)
    notification = notifications.send_to_lead(
        session=session,
        lead=lead,
        channel=channel,
        subject=subject_text,
        body=body_text,
        dedupe_key=f"manual-message:{uuid.uuid4().hex}",
        now=now,
        kind=MANUAL_KIND,
        context={"sent_by": actor.ref},
        not_before=decision.to if decision.verdict == policy.MOVE else None,
    )
    activity = activities.record(
        session=session,
        lead=lead,
        type=ActivityType.EMAIL if channel == EMAIL else ActivityType.SMS,
        at=now,
        actor_ref=actor.ref,
        user_id=actor.user_id,
        direction=ActivityDirection.OUTBOUND,
        notes=f"{'Email' if channel == EMAIL else 'SMS'}: {(subject_text or body_text)[:200]}",
        details={
            "notification_id": notification.id,
            **({"message_template_id": template_id} if template_id is not None else {}),
        },
    )
    if template_id is not None:
        templates.record_use(
            session=session,
            template_id=template_id,
            lead=lead,
            notification_id=notification.id,
            channel=channel,
            sent_by=actor.ref,
            now=now,
        )
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="lead.message",
        subject_type="lead",
        subject_id=lead.id,
        after={"notification_id": notification.id, "channel": channel, "template_id": template_id},
        at=now,
    )
    return {
        "notification_id": notification.id,
        "activity_id": activity.id,
        "channel": channel,
        "template_id": template_id,
        "status": notification.status,
        "scheduled_for": notification.next_attempt_at,
        "held_until_reason": decision.reason if decision.verdict == policy.MOVE else None,
        "subject": subject_text if channel == EMAIL else None,
        "body": body_text,
    }


def _rendered(session: Session, lead, subject: str | None, body: str) -> tuple[str, str]:
    values = templates.merge_values(session=session, lead=lead, texts=(subject or "", body))
    try:
        return merge_fields.merge(subject or "", values), merge_fields.merge(body, values)
    except TemplateError as error:  # a template saved before today's bounds: refuse, never a 500
        raise ValidationFailed("body", f"the message text cannot be rendered: {error}") from None
