"""Meta's Instagram webhook: the subscription handshake, the signature of every event, the DMs in it.

Meta signs each POST with X-Hub-Signature-256: "sha256=" and the HMAC-SHA256 of the raw body under
the app's secret (INSTAGRAM_APP_SECRET), compared in constant time; an unsigned or wrongly signed
POST is a 403 and nothing of it is read. A notification carries `entry[].messaging[]`: each a
`sender.id` (the family's Instagram-scoped id, IGSID), a `recipient.id` (the clinic's connected
account, which routes it to its clinic), a `timestamp` (ms) and a `message` (`mid`, `text`,
`attachments`). Echoes of the clinic's own messages (`is_echo`), deletions, reads and reactions are
passed over, never an error: Meta would retry them.

A DM is recorded once per `mid` (the inbound ledger's unique key): from a known IGSID on its lead,
as an inbound DIRECT_MESSAGE (a contact: it stops sequences and pending automated messages like a
text reply); from an unknown one, on a new lead captured with source "Instagram" (its profile's
name and handle read from Graph with the clinic's token), which runs the new-lead automation.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from app.domains.auth.instagram import service as accounts
from app.domains.auth.instagram.models import InstagramAccount, InstagramContact
from app.domains.conversations import media
from app.domains.intake import service as intake
from app.domains.intake.inbound import messages as inbound
from app.domains.intake.inbound.models import InboundMessage
from app.domains.intake.instagram.profile import fetch_profile
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork
from app.platform.errors import BadRequest, Forbidden, NotFound

CHANNEL = inbound.INSTAGRAM
MAX_TEXT = 20_000
MAX_ID = 200


def challenge(*, settings, args: dict) -> str:
    """Meta's subscription handshake: `hub.challenge` back when `hub.mode` is subscribe and
    `hub.verify_token` is the deployment's INSTAGRAM_VERIFY_TOKEN; otherwise 403."""
    expected = settings.instagram_verify_token
    offered = args.get("hub.verify_token") or ""
    if not expected or args.get("hub.mode") != "subscribe":
        raise Forbidden("not a subscription request for this deployment")
    if not hmac.compare_digest(offered.encode(), expected.encode()):
        raise Forbidden("hub.verify_token does not match")
    return args.get("hub.challenge") or ""


def verified(*, settings, body: bytes, signature: str | None) -> dict:
    """The notification, once X-Hub-Signature-256 is the HMAC-SHA256 of `body` under the app secret."""
    secret = settings.instagram_app_secret
    if not secret:
        raise NotFound("Instagram webhooks are not configured (INSTAGRAM_APP_SECRET)")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not signature or not hmac.compare_digest(signature.strip().encode(), expected.encode()):
        raise Forbidden("missing or bad X-Hub-Signature-256")
    try:
        notification = json.loads(body)
    except ValueError:
        raise BadRequest("the body is not JSON", errors={"body": ["not JSON"]}) from None
    return notification if isinstance(notification, dict) else {}


def direct_messages(notification: dict) -> list[dict]:
    """The family's DMs of a notification, each {account, sender, mid, text, attachments, at}."""
    found = []
    for entry in _list(notification.get("entry")):
        for event in _list(_dict(entry).get("messaging")):
            message = _dict(event).get("message")
            if not isinstance(message, dict) or message.get("is_echo") or message.get("is_deleted"):
                continue  # a read, a reaction, the clinic's own message echoed, a deletion
            sender = str(_dict(event.get("sender")).get("id") or "")[:64]
            account = str(_dict(event.get("recipient")).get("id") or entry.get("id") or "")[:64]
            mid = str(message.get("mid") or "")[:MAX_ID]
            if not (sender and account and mid):
                continue
            found.append(
                {
                    "account": account,
                    "sender": sender,
                    "mid": mid,
                    "text": str(message.get("text") or "")[:MAX_TEXT],
                    "attachments": _attachment_kinds(message.get("attachments")),
                    "media": media.from_instagram(message.get("attachments")),
                    "at": _when(event.get("timestamp")),
                }
            )
    return found


def _list(value) -> list:
    """A list Meta sent, or nothing: a signed body of another shape is passed over, never a 500."""
    return value if isinstance(value, list) else []


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _attachment_kinds(attachments) -> list[str]:
    if not isinstance(attachments, list):
        return []
    return [str(a.get("type") or "file")[:16] for a in attachments if isinstance(a, dict)]


def _when(timestamp) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def receive(*, session: UnitOfWork, notification: dict, settings, now: datetime) -> int:
    """Record the notification's DMs (each once); how many were recorded now. A DM to an account no
    clinic has connected is answered and not stored (Meta must not retry it)."""
    recorded = 0
    for dm in direct_messages(notification):
        account = accounts.account_by_id(session, dm["account"])
        if account is None or inbound.find_seen(session, account.clinic_id, CHANNEL, dm["mid"]) is not None:
            continue
        write = functools.partial(_record, session, account, dm, settings, now)
        try:
            _, first = inbound.record_once(session, account.clinic_id, CHANNEL, dm["mid"], write)
        except IntegrityError:
            # Another DM of the same new person, received at the same moment, made their lead (the
            # contact's unique key): this one goes on it.
            _, first = inbound.record_once(session, account.clinic_id, CHANNEL, dm["mid"], write)
        recorded += first
    return recorded


def _record(
    session: UnitOfWork, account: InstagramAccount, dm: dict, settings, now: datetime
) -> InboundMessage:
    contact = accounts.contact_by_igsid(session, account.clinic_id, dm["sender"])
    if contact is None:
        contact = _new_contact(session, account, dm["sender"], settings, now)
    received_at = min(dm["at"] or now, now)  # Meta's clock ahead of ours
    if contact.last_inbound_at is None or received_at > contact.last_inbound_at:
        contact.last_inbound_at = received_at
    lead = session.get(Lead, contact.lead_id)
    details = {"attachments": dm["attachments"]} if dm["attachments"] else {}
    message = {
        "channel": CHANNEL,
        "from": dm["sender"],
        "body": dm["text"],
        "message_id": dm["mid"],
        "details": details,
        "media": dm["media"],
    }
    return inbound.record_reply(session, lead, message, received_at, now)


def _new_contact(
    session: UnitOfWork, account: InstagramAccount, igsid: str, settings, now: datetime
) -> InstagramContact:
    """A lead for an Instagram user the clinic does not know yet, named as their profile says."""
    profile = fetch_profile(settings=settings, igsid=igsid, token=account.access_token)
    accounts.mark_used(session, account, now)
    lead = intake.capture_instagram_dm(
        session=session, clinic_id=account.clinic_id, profile=profile, now=now
    ).lead
    contact = InstagramContact(
        clinic_id=account.clinic_id,
        igsid=igsid,
        lead_id=lead.id,
        handle=profile.get("username"),
        created_at=now,
    )
    session.add(contact)
    session.flush()
    return contact
