"""Replies by email through SendGrid's Inbound Parse: a multipart post (from, to, subject, text,
html, headers) to a URL whose last segment is a secret (SENDGRID_INBOUND_SECRET).

The lead is the one named by the signed token of the reply address it wrote to (reply+<token>@
EMAIL_INBOUND_DOMAIN, set as Reply-To on its emails). A reply is recorded like every inbound
message (an INBOUND EMAIL, contact: it ends the lead's sequences), shown as the family wrote it:
without the quoted history below it (mail-parser-reply), the full text kept in the conversation for
the record. An auto-reply (Auto-Submitted other than "no", X-Autoreply, X-Autorespond, Precedence
auto_reply, bulk, list or junk) is logged as a note, marked in the conversation, and is not contact:
an out-of-office must not stop the follow-up as if the lead had answered. An email to the
List-Unsubscribe mailto (unsubscribe+<token>@ the same domain) is no reply: it opts the lead out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from email.parser import HeaderParser
from email.utils import getaddresses

from mailparser_reply import EmailReplyParser

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityType
from app.domains.auth import signing
from app.domains.conversations import service as conversations
from app.domains.intake.inbound import messages as inbound
from app.domains.lead_messages import unsubscribe
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound

REPLY_ADDRESS = re.compile(r"^reply\+([0-9]+\.[0-9a-fA-F]{32})@", re.IGNORECASE)
# The mailto of List-Unsubscribe: the lead's one-click token (app/domains/lead_messages/unsubscribe.py).
UNSUBSCRIBE_ADDRESS = re.compile(r"^unsubscribe\+([0-9]+\.[0-9a-fA-F]{32})@", re.IGNORECASE)
MAX_TEXT = 20_000
# Precedence values of mail no person wrote: an autoresponder's, a list's, bulk mail.
MACHINE_PRECEDENCE = frozenset({"auto_reply", "bulk", "list", "junk"})
# The quoted-history markers of these languages are recognised ("On ... wrote:", "Le ... a écrit :").
REPLY_LANGUAGES = ["en", "fr", "de", "es", "it", "nl", "pl", "sv"]


def written_part(text: str) -> str:
    """The reply as the family wrote it: without the quoted history and signature below it; the
    whole text when the parser finds nothing of its own (better too much than an empty message)."""
    try:
        reply = EmailReplyParser(languages=REPLY_LANGUAGES).parse_reply(text=text)
    except Exception:
        return text
    return (reply or "").strip() or text


def check_secret(configured: str | None, given: str) -> None:
    if not configured or not hmac.compare_digest(configured.encode(), given.encode()):
        raise NotFound("not found")  # the URL's secret is its credential: a wrong one is no endpoint


def is_auto_reply(headers) -> bool:
    auto = (headers.get("Auto-Submitted") or "no").strip().lower()
    precedence = (headers.get("Precedence") or "").strip().lower()
    return (
        auto != "no"
        or headers.get("X-Autoreply") is not None
        or headers.get("X-Autorespond") is not None
        or precedence in MACHINE_PRECEDENCE
    )


def lead_of(session: UnitOfWork, secret: str | None, to: str) -> Lead | None:
    for _, address in getaddresses([to]):
        match = REPLY_ADDRESS.match(address.strip())
        if match and secret:
            lead_id = signing.lead_of_unsubscribe_token(secret, match.group(1), "reply")
            lead = session.get(Lead, lead_id) if lead_id is not None else None
            # An erased lead's reply is dropped: its person asked to be forgotten (privacy/erasure.COPIES).
            if lead is not None and lead.deleted_at is None and lead.erased_at is None:
                return lead
    return None


def unsubscribe_token_of(to: str) -> str | None:
    """The one-click token of an unsubscribe+<token>@ address among the recipients, if any."""
    for _, address in getaddresses([to]):
        match = UNSUBSCRIBE_ADDRESS.match(address.strip())
        if match:
            return match.group(1)
    return None


def receive(*, session: UnitOfWork, secret: str | None, form: dict, now: datetime) -> dict:
    """Record a reply on its lead (once per Message-ID); an auto-reply only as a note. An email to
    the List-Unsubscribe mailto opts its lead out of email (audited; again, it changes nothing)."""
    token = unsubscribe_token_of(form.get("to") or "")
    if token is not None:
        return _unsubscribe(session, secret, token, now)
    lead = lead_of(session, secret, form.get("to") or "")
    if lead is None:
        return {"matched": False}  # not one of our reply addresses: answered, nothing stored
    headers = HeaderParser().parsestr(form.get("headers") or "")
    text = (form.get("text") or "")[:MAX_TEXT]
    message_id = (headers.get("Message-ID") or "").strip()[:200] or hashlib.sha256(
        f"{form.get('from')}|{form.get('subject')}|{text}".encode()
    ).hexdigest()
    if is_auto_reply(headers):
        _keep_auto_reply(session, lead, form, message_id, now)
        activities.record(
            session=session,
            lead=lead,
            automation=False,
            facts=activities.ActivityFacts(
                type=ActivityType.NOTE,
                at=now,
                recorded_at=now,
                notes=f"Auto-reply received: {(form.get('subject') or '')[:200]}",
                details={"auto_reply": True, "channel": inbound.EMAIL},
            ),
        )
        return {"matched": True, "lead_id": lead.id, "auto_reply": True}
    message = {
        "channel": inbound.EMAIL,
        "from": form.get("from") or "",
        "body": text,
        "shown_body": written_part(text),
        "full_body": text,
        "subject": (form.get("subject") or "")[:200] or None,
        "message_id": message_id,
    }
    seen = inbound.find_seen(session, lead.clinic_id, inbound.EMAIL, message_id)
    if seen is None:
        inbound.record_once(
            session,
            lead.clinic_id,
            inbound.EMAIL,
            message_id,
            lambda: inbound.record_reply(session, lead, message, now, now),
        )
    return {"matched": True, "lead_id": lead.id, "auto_reply": False}


def _keep_auto_reply(session: UnitOfWork, lead: Lead, form: dict, message_id: str, now: datetime) -> None:
    """The auto-reply in the lead's thread, marked as one (nobody waits on it), once per Message-ID."""
    text = (form.get("text") or "")[:MAX_TEXT]
    message = conversations.Inbound(
        channel=inbound.EMAIL,
        provider_message_id=message_id,
        body=written_part(text),
        full_body=text,
        subject=(form.get("subject") or "")[:200] or None,
        occurred_at=now,
        auto_reply=True,
    )
    conversation = conversations.conversation_of(session=session, lead=lead, now=now)
    conversations.record_inbound_once(session=session, conversation=conversation, message=message, now=now)


def _unsubscribe(session: UnitOfWork, secret: str | None, token: str, now: datetime) -> dict:
    try:
        lead = unsubscribe.lead_of(session=session, secret=secret, token=token)
    except NotFound:
        return {"matched": False}  # not a token of ours: answered, nothing stored
    changed = unsubscribe.unsubscribe(
        session=session, secret=secret, token=token, now=now, actor_ref=unsubscribe.MAILTO_ACTOR
    )
    return {"matched": True, "lead_id": lead.id, "unsubscribed": changed}
