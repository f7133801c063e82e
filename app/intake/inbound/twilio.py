"""Inbound SMS as Twilio posts it: form-encoded, signed with X-Twilio-Signature, answered with TwiML.

The clinic is the one whose own number (settings.sms_number) the text was sent `To`; the lead is
matched by `From` within it. The carriers' keywords act on the number, not on one lead: STOP (and
its synonyms) opts out every lead of the clinic with that number, closed ones included, since a
sibling or duplicate lead would otherwise keep being texted; START/UNSTOP opt them back in; HELP is
answered with the clinic's help text. Any other text is a reply, recorded like every inbound message.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from app.auth import service as clinics
from app.auth.models import Clinic
from app.intake.inbound import messages as inbound
from app.leads import service as leads
from app.leads.models import Lead

START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
MAX_BODY = 20_000


def keyword(body: str) -> str:
    return body.strip().strip(".!").strip().upper()


def help_text(clinic: Clinic) -> str:
    """The clinic's answer to HELP: its own text, else its name and how to stop."""
    custom = (clinic.settings or {}).get("sms_help_text")
    return custom or f"{clinic.name}: reply STOP to stop texts. Call the clinic for help."


def twiml(text: str | None = None) -> str:
    """Twilio's answer: empty (nothing sent back) or one message."""
    answer = MessagingResponse()
    if text:
        answer.message(text)
    return str(answer)


def leads_with_number(session: Session, clinic: Clinic, sender: str) -> list[Lead]:
    """Every lead of the clinic with this phone (main or alternate), whatever its status."""
    key = inbound.sender_key(channel=inbound.SMS, sender=sender, region=clinic.default_phone_region)
    if key is None:
        return []
    return list(
        session.scalars(
            sa.select(Lead)
            .where(
                Lead.clinic_id == clinic.id,
                Lead.deleted_at.is_(None),
                sa.or_(Lead.phone == key, Lead.phone_alt == key),
            )
            .order_by(Lead.id)
            .with_for_update()
        )
    )


def set_sms_opt_out(*, session: Session, lead: Lead, opted_out: bool, now: datetime) -> None:
    """Audited, with a lead.updated event (an opt-out ends the lead's sequences)."""
    if bool(lead.sms_opt_out) == opted_out:
        return
    lead.sms_opt_out = opted_out
    leads.record_update(
        session=session,
        lead=lead,
        old={"sms_opt_out": not opted_out},
        new={"sms_opt_out": opted_out},
        actor_ref=inbound.ACTOR,
        now=now,
    )


def receive_sms(*, session: Session, form: dict, now: datetime) -> str:
    """Handle one verified Twilio inbound SMS; the TwiML to answer with."""
    to, sender = (form.get("To") or "").strip(), (form.get("From") or "").strip()
    body, sid = (form.get("Body") or "")[:MAX_BODY], (form.get("MessageSid") or "").strip()[:128]
    clinic = clinics.clinic_by_sms_number(session=session, number=to) if to else None
    if clinic is None or not sender or not sid:
        return twiml()  # not a number of ours: answered so Twilio stops retrying; nothing stored
    word = keyword(body)
    if word in HELP_WORDS:
        return twiml(help_text(clinic))
    if word in START_WORDS:
        for lead in leads_with_number(session, clinic, sender):
            set_sms_opt_out(session=session, lead=lead, opted_out=False, now=now)
        return twiml()
    if inbound.is_stop(body):
        # Before the reply is recorded: the opt-outs' events end the enrollments as "opted_out".
        for lead in leads_with_number(session, clinic, sender):
            set_sms_opt_out(session=session, lead=lead, opted_out=True, now=now)
    message = {"channel": inbound.SMS, "from": sender, "body": body, "message_id": sid}
    inbound.receive(session=session, clinic_id=clinic.id, message=message, now=now)
    return twiml()
