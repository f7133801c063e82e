"""SendGrid's Event Webhook: a signed JSON array of events about the emails we sent.

The signature is ECDSA (P-256, SHA-256) over the timestamp header followed by the raw body, checked
with SendGrid's own helper against the verification key of the account (SENDGRID_EVENT_PUBLIC_KEY).
A hard bounce, a drop or a spam complaint means the address must not be mailed again: every lead
with it is opted out of email. One SendGrid account sends for every clinic, and an address that
bounces or complains does so whichever clinic writes, so the opt-out follows the address.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy.orm import Session

from app.errors import NotFound, Unauthorized, ValidationFailed
from app.leads import rules as lead_rules
from app.leads import service as leads
from app.leads.models import Lead

ACTOR = "sendgrid_event"
# "bounce" of type "blocked" is a soft one (the receiver refused for now): not an opt-out.
OPT_OUT_EVENTS = frozenset({"bounce", "dropped", "spamreport"})


def verify(*, public_key: str | None, body: bytes, signature: str | None, timestamp: str | None) -> list:
    """The events of a request SendGrid signed; else 401 (404 when no key is configured)."""
    if not public_key:
        raise NotFound("the SendGrid Event Webhook is not configured (SENDGRID_EVENT_PUBLIC_KEY)")
    if not (signature and timestamp):
        raise Unauthorized("missing X-Twilio-Email-Event-Webhook-Signature or -Timestamp")
    try:
        valid = EventWebhook(public_key).verify_signature(body.decode("utf-8"), signature, timestamp)
    except (ValueError, UnicodeDecodeError):  # an undecodable signature or body
        valid = False
    if not valid:
        raise Unauthorized("bad SendGrid event signature")
    try:
        events = json.loads(body)
    except ValueError:
        raise ValidationFailed("body", "a JSON array of events") from None
    if not isinstance(events, list):
        raise ValidationFailed("body", "a JSON array of events")
    return events


def apply_events(*, session: Session, events: list, now: datetime) -> dict:
    """Opt out of email every lead whose address hard-bounced, was dropped or complained."""
    opted_out = 0
    for event in events:
        if not isinstance(event, dict) or event.get("event") not in OPT_OUT_EVENTS:
            continue
        if event.get("event") == "bounce" and event.get("type") == "blocked":
            continue
        address = event.get("email")
        if isinstance(address, str) and "@" in address:
            opted_out += _opt_out(session, lead_rules.normalize_email(address), now)
    return {"received": len(events), "opted_out": opted_out}


def _opt_out(session: Session, address: str, now: datetime) -> int:
    rows = session.scalars(
        sa.select(Lead)
        .where(Lead.email == address, Lead.deleted_at.is_(None), Lead.email_opt_out.is_(False))
        .with_for_update()
    )
    count = 0
    for lead in rows:
        lead.email_opt_out = True
        leads.record_update(
            session=session,
            lead=lead,
            old={"email_opt_out": False},
            new={"email_opt_out": True},
            actor_ref=ACTOR,
            now=now,
        )
        count += 1
    return count
