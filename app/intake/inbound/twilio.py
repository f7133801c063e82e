"""Inbound SMS as Twilio posts it: form-encoded, signed with X-Twilio-Signature, answered with TwiML.

The clinic is the one whose own number (settings.sms_number) the text was sent `To`; the lead is
matched by `From` within it. The carriers' keywords act on the number, not on one lead: STOP (and
its synonyms) opts out every lead of the clinic with that number, closed ones included, since a
sibling or duplicate lead would otherwise keep being texted; START/UNSTOP opt them back in; HELP is
answered with the clinic's help text. Any other text is a reply, recorded like every inbound message.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from app.auth import service as clinics
from app.auth.models import Clinic
from app.intake.inbound import messages as inbound

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
        for lead in inbound.leads_with_number(session, clinic, sender):
            inbound.set_sms_opt_out(session=session, lead=lead, opted_out=False, now=now)
        return twiml()
    if inbound.is_stop(body):
        # Before the reply is recorded: the opt-outs' events end the enrollments as "opted_out".
        for lead in inbound.leads_with_number(session, clinic, sender):
            inbound.set_sms_opt_out(session=session, lead=lead, opted_out=True, now=now)
    message = {"channel": inbound.SMS, "from": sender, "body": body, "message_id": sid}
    inbound.receive(session=session, clinic_id=clinic.id, message=message, now=now)
    return twiml()
