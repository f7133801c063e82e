"""A one-off message from a person to a lead, by email, SMS, Instagram or WhatsApp
(POST /api/leads/:id/messages).

The same road as automation's messages (app/domains/lead_messages/to_lead.py), minus the automated-message
limits: the contact policy (do-not-contact, the channel's opt-out, an address, quiet hours: the
message waits for their end), the renderer of the merge fields, the notifications ledger (rendered
once, delivered by the worker, once per delivery key), and an OUTBOUND activity on the timeline, so
it counts as an attempt (app/domains/activities/rules.py) like a call nobody answered.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from app.domains.conversations import whatsapp
from app.domains.lead_messages import merge_fields, policy, templates, to_lead
from app.domains.lead_messages.models import EMAIL, INSTAGRAM, SMS, WHATSAPP
from app.domains.leads import service as leads
from app.domains.outbound.models import WhatsAppTemplate, waiting_hold
from app.platform import phi_policy
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, ValidationFailed
from app.platform.roles import Actor

MANUAL_KIND = "manual_message"


def send_message(
    *,
    session: UnitOfWork,
    actor: Actor,
    lead_id: int,
    data: dict,
    now: datetime,
    idempotency_key: str | None = None,
) -> dict:
    """Queue the message (now, or at the end of quiet hours) and log it; 409 when the policy refuses.
    The dedupe key comes from the client's Idempotency-Key when it gives one: the notifications
    ledger then holds one message per key even if two requests with it race past the replay."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    leads.ensure_not_converted(lead)
    channel, template_id = data["channel"], data.get("template_id")
    subject, body = data.get("subject"), data.get("body")
    if template_id is not None:
        template = templates.template_for(
            session=session, clinic_id=actor.clinic_id, template_id=template_id, channel=channel
        )
        subject, body = template.subject, template.body
    decision = to_lead.check_policy(
        session=session, lead=lead, channel=channel, at=now, sent_as=policy.BY_HAND
    )
    if decision.verdict == policy.SKIP:
        code = "do_not_contact" if decision.reason == policy.DO_NOT_CONTACT else "contact_policy"
        raise Conflict(f"the contact policy holds this message back: {decision.reason}", code=code)
    context = {"sent_by": actor.ref}
    if channel == WHATSAPP:
        body, template = whatsapp_reply(session, lead, (body, data), now)
        context.update(template.as_context() if template is not None else {})
    sent = to_lead.send(
        session=session,
        lead=lead,
        now=now,
        message=to_lead.LeadMessage(
            channel=channel,
            subject=subject,
            body=body,
            dedupe_key=manual_dedupe_key(actor, lead_id, idempotency_key),
            kind=MANUAL_KIND,
            context=context,
            label={EMAIL: "Email", SMS: "SMS", INSTAGRAM: "Instagram", WHATSAPP: "WhatsApp"}[channel],
            sent_by=actor.ref,
            user_id=actor.user_id,
            details={},
            template_id=template_id,
            not_before=decision.to if decision.verdict == policy.MOVE else None,
            held_by=decision.held_by,
            media=data.get("media"),
        ),
    )
    notification = sent.notification
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead.message",
            subject_type="lead",
            subject_id=lead.id,
            after={"notification_id": notification.id, "channel": channel, "template_id": template_id},
            at=now,
        ),
    )
    shown_subject, shown_body = sent.subject, sent.body
    if not phi_policy.may_read_phi(actor):
        shown_subject, shown_body = _as_reader_sees(session, actor, lead, (subject or "", body))
    return {
        "notification_id": notification.id,
        "activity_id": sent.activity.id,
        "channel": channel,
        "template_id": template_id,
        "status": notification.status,
        "scheduled_for": notification.next_attempt_at,
        "held_until_reason": decision.reason if decision.verdict == policy.MOVE else None,
        **waiting_hold(notification),
        "subject": shown_subject if channel == EMAIL else None,
        "body": shown_body,
    }


def whatsapp_reply(session, lead, message: tuple[str | None, dict], now: datetime):
    """(body, template) of a WhatsApp message by hand: its text inside the 24-hour window, else the
    approved template it names; 422 naming content_sid when the window is closed and it names none."""
    body, data = message
    body, template, closed = whatsapp.choose(session, lead.id, (body, WhatsAppTemplate.named_in(data)), now)
    if closed is not None:
        raise ValidationFailed("content_sid", closed)
    if template is not None:
        template = to_lead.filled_template(session=session, lead=lead, template=template)
    return (body if template is None else whatsapp.shown(template)), template


def _as_reader_sees(session: UnitOfWork, actor: Actor, lead, texts: tuple[str, str]) -> tuple[str, str]:
    """The subject and body the answer echoes, rendered again with the lead's PHI merge fields as
    `actor` may see them (`[patient_first_name]` without `lead:phi`): the texts were rendered once
    already, so they render again now."""
    values = templates.merge_values(session=session, lead=lead, texts=texts)
    values = phi_policy.withhold_merge_values(values, actor)
    return tuple(merge_fields.merge(text, values) for text in texts)


def manual_dedupe_key(actor: Actor, lead_id: int, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return f"manual-message:{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{actor.ref}:{lead_id}:{idempotency_key}".encode()).hexdigest()[:40]
    return f"manual-message:key:{digest}"
