"""Inbound SMS as Twilio posts it: form-encoded, signed with X-Twilio-Signature, answered with TwiML.

The clinic is the one the platform operator assigned the Messaging Service (MessagingServiceSid) or
number (`To`) the text was sent to; the lead is matched by `From` within it. A text to the shared
SMS_FROM is no clinic's own, whatever a clinic claimed: its STOP and START apply to the phone in
every clinic sending from it, and any other text is the clinic's that last texted that phone from it
(else the platform operator's queue keeps it). Each MessageSid acts once, text or WhatsApp, to a
clinic's number or a shared sender: remembered in the database before any keyword acts, so a
replayed START cannot undo a STOP.
The carriers' keywords act on the number, not on one lead: STOP (and its synonyms) opts out every
lead of the clinic with that number, closed ones included, since a sibling or duplicate lead would
otherwise keep being texted; START/UNSTOP opt them back in; HELP is answered with the clinic's help
text. Any other text is a reply, recorded like every inbound message.

WhatsApp comes on the same signed webhook: its addresses carry a `whatsapp:` prefix (`From`,
`To`), with the family's WhatsApp id (`WaId`, its number without the +) and profile name
(`ProfileName`, not stored: a name is PHI and the lead has its own). Routed by the clinic's number
like a text, it is a message of the lead's thread on the `whatsapp` channel (which opens WhatsApp's
24-hour window), and its STOP and START act on WhatsApp only.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from twilio.twiml.messaging_response import MessagingResponse

from app.domains.auth import service as clinics
from app.domains.auth.senders import identity as senders
from app.domains.conversations import media
from app.domains.intake.inbound import messages as inbound
from app.domains.intake.inbound import shared_sender
from app.platform.db import UnitOfWork

if TYPE_CHECKING:
    from app.domains.auth.models import Clinic

START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
MAX_BODY = 20_000
PROVIDER = "twilio_sms"  # what a MessageSid is remembered under (inbound.first_delivery)
WHATSAPP_PREFIX = "whatsapp:"
SHARED_HELP = "Reply STOP to stop these texts, START to receive them again."


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


def receive_sms(*, session: UnitOfWork, form: dict, settings, now: datetime) -> str:
    """Handle one verified Twilio inbound SMS; the TwiML to answer with. `settings`: the app's
    (SMS_FROM, the shared sender)."""
    if (form.get("From") or "").strip().startswith(WHATSAPP_PREFIX):
        return receive_whatsapp(session=session, form=form, settings=settings, now=now)
    to, sender = (form.get("To") or "").strip(), (form.get("From") or "").strip()
    body, sid = (form.get("Body") or "")[:MAX_BODY], (form.get("MessageSid") or "").strip()[:128]
    service_sid = (form.get("MessagingServiceSid") or "").strip()
    # Before any clinic's own: the shared sender is never one clinic's (its number may even sit in
    # a clinic's Messaging Service pool).
    shared = senders.is_shared_sms(to, settings) or senders.is_shared_sms(service_sid, settings)
    clinic = None if shared else addressed_clinic(session, service_sid, to, settings)
    if (clinic is None and not shared) or not sender or not sid:
        return twiml()  # not a number of ours: answered so Twilio stops retrying; nothing stored
    # Before any keyword acts: a replayed START must not undo the STOP that came after it.
    if not inbound.first_delivery(session, provider=PROVIDER, delivery_id=sid, now=now):
        return twiml()
    message = {"channel": inbound.SMS, "from": sender, "body": body, "message_id": sid}
    message["media"] = media.from_twilio(form)  # an MMS's photos and videos, as references
    if shared:
        return _to_shared_sender(session, message, settings, now)
    word = keyword(body)
    if word in HELP_WORDS:
        return twiml(help_text(clinic))
    if word in START_WORDS:
        _set_opt_out([clinic], session, sender, opted_out=False, now=now)
        return twiml()
    if inbound.is_stop(body):
        # Before the reply is recorded: the opt-outs' events end the enrollments as "opted_out".
        _set_opt_out([clinic], session, sender, opted_out=True, now=now)
    inbound.receive(session=session, clinic_id=clinic.id, message=message, now=now)
    return twiml()


def receive_whatsapp(*, session: UnitOfWork, form: dict, settings, now: datetime) -> str:
    """One verified inbound WhatsApp message: the family's STOP/START on WhatsApp, else a message of
    the lead's thread (an unknown sender's, as for a text). To the shared WhatsApp sender, a STOP or
    START holds in every clinic that sends from it, and a message is the clinic's that last
    messaged that phone from it (shared_sender.py)."""
    to = (form.get("To") or "").strip().removeprefix(WHATSAPP_PREFIX)
    sender = (form.get("From") or "").strip().removeprefix(WHATSAPP_PREFIX)
    wa_id = (form.get("WaId") or "").strip()
    if not sender.startswith("+") and wa_id.isdigit():
        sender = f"+{wa_id}"  # WhatsApp's own id of the family: its number without the +
    body, sid = (form.get("Body") or "")[:MAX_BODY], (form.get("MessageSid") or "").strip()[:128]
    shared = senders.is_shared_sender(to, settings)
    clinic = None if shared else addressed_clinic(session, "", to, settings)
    if (clinic is None and not shared) or not sender or not sid:
        return twiml()  # answered so Twilio stops retrying; nothing stored
    # Before any keyword acts, on the shared sender too: a replayed START must not undo a later STOP.
    if not inbound.first_delivery(session, provider=PROVIDER, delivery_id=sid, now=now):
        return twiml()
    message = {"channel": inbound.WHATSAPP, "from": sender, "body": body, "message_id": sid}
    if shared:
        return _to_shared_whatsapp_sender(session, message, to, settings, now)
    word = keyword(body)
    if word in HELP_WORDS:
        return twiml(help_text(clinic))
    if word in START_WORDS or inbound.is_stop(body):
        for lead in inbound.leads_with_number(session, clinic, sender):
            opted_out = word not in START_WORDS
            inbound.set_opt_out(
                session=session, lead=lead, field="whatsapp_opt_out", opted_out=opted_out, now=now
            )
        if word in START_WORDS:
            return twiml()
    inbound.receive(session=session, clinic_id=clinic.id, message=message, now=now)
    return twiml()


def addressed_clinic(session: UnitOfWork, service_sid: str, to: str, settings) -> Clinic | None:
    """The clinic a text went to, by what the operator assigned: its Messaging Service (any number
    of the pool), else its number."""
    clinic = senders.assignee(
        session=session, sender=service_sid, kind=senders.MESSAGING_SERVICE, config=settings
    )
    return clinic or senders.assignee(session=session, sender=to, kind=senders.NUMBER, config=settings)


def _to_shared_sender(session: UnitOfWork, message: dict, settings, now: datetime) -> str:
    """A text to the shared SMS_FROM. The carrier's STOP and START hold for the number whichever
    clinic texted from it, so they apply to that phone in every clinic that sends from the shared
    number; any other text is the clinic's that last texted that phone from it, else it waits in the
    platform operator's queue (shared_sender.py)."""
    word, sender = keyword(message["body"]), message["from"]
    if word in HELP_WORDS:
        return twiml(SHARED_HELP)
    if word in START_WORDS or inbound.is_stop(message["body"]):
        on_shared = clinics.clinics_on_shared_sms_sender(session=session, config=settings)
        _set_opt_out(on_shared, session, sender, opted_out=word not in START_WORDS, now=now)
        return twiml()
    shared_sender.receive(
        session=session, message=message, shared=settings.sms_from, settings=settings, now=now
    )
    return twiml()


def _to_shared_whatsapp_sender(
    session: UnitOfWork, message: dict, shared: str, settings, now: datetime
) -> str:
    """A WhatsApp message to the shared WhatsApp sender `shared`: as on the shared SMS number, a STOP
    or START holds in every clinic that sends WhatsApp from it (WhatsApp only); anything else is the
    clinic's that last messaged that phone from it, else it waits in the platform operator's queue."""
    word, sender = keyword(message["body"]), message["from"]
    if word in HELP_WORDS:
        return twiml(SHARED_HELP)
    if word in START_WORDS or inbound.is_stop(message["body"]):
        for clinic in clinics.clinics_on_shared_whatsapp_sender(session=session, config=settings):
            for lead in inbound.leads_with_number(session, clinic, sender):
                opted_out = word not in START_WORDS
                inbound.set_opt_out(
                    session=session, lead=lead, field="whatsapp_opt_out", opted_out=opted_out, now=now
                )
        return twiml()
    shared_sender.receive(session=session, message=message, shared=shared, settings=settings, now=now)
    return twiml()


def _set_opt_out(
    of: list[Clinic], session: UnitOfWork, sender: str, *, opted_out: bool, now: datetime
) -> None:
    for clinic in of:
        for lead in inbound.leads_with_number(session, clinic, sender):
            inbound.set_sms_opt_out(session=session, lead=lead, opted_out=opted_out, now=now)
