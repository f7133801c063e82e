"""SendGrid's Event Webhook: a signed JSON array of events about the emails we sent.

The signature is ECDSA (P-256, SHA-256) over the timestamp header followed by the raw body, checked
with SendGrid's own helper against the verification key of the account (SENDGRID_EVENT_PUBLIC_KEY).
A hard bounce, a drop or a spam complaint means the address must not be mailed again: every lead
with it is opted out of email. One SendGrid account sends for every clinic, and an address that
bounces or complains does so whichever clinic writes, so the opt-out follows the address. A bounce
or a drop is also a `message.bounced` event (rules and sequences react to it), and `delivered` /
`open` stamp the email they are about, found by the notification id our X-SMTPAPI header gave
SendGrid to echo (app/domains/outbound/providers/composer.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sendgrid.helpers.eventwebhook import EventWebhook

from app.domains.engagement import service as engagement
from app.domains.intake.inbound import messages as inbound
from app.domains.intake.inbound.models import ProviderDelivery
from app.domains.leads import consent as lead_consent
from app.domains.leads import rules as lead_rules
from app.domains.leads.models import Lead
from app.domains.outbound import service as notifications
from app.domains.outbound.events import MessageBounced
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound, Unauthorized, ValidationFailed
from app.platform.events import service as domain_events

ACTOR = "sendgrid_event"
# "bounce" of type "blocked" is a soft one (the receiver refused for now): not an opt-out.
OPT_OUT_EVENTS = frozenset({"bounce", "dropped", "spamreport"})
BOUNCE_EVENTS = frozenset({"bounce", "dropped"})  # the address cannot be written to: message.bounced
TRACKED_EVENTS = frozenset({"delivered", "open"})  # what became of an email we sent
PROVIDER = "sendgrid_event"  # what an sg_event_id is remembered under (inbound.first_delivery)
# SendGrid retries a delivery that failed for up to 24 hours; a day more covers an outage of ours
# on top. Older events are refused: within the window their sg_event_id is remembered, so a replay
# is refused by memory, and beyond it by age (the memory need not be kept longer than the window).
EVENT_WINDOW = timedelta(hours=48)
CLOCK_SKEW = timedelta(minutes=5)  # SendGrid's clock a little ahead of ours


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


def apply_events(*, session: UnitOfWork, events: list, now: datetime) -> dict:
    """Opt out of email every lead whose address hard-bounced, was dropped or complained; a bounce
    or drop also fails the email it was about and tells the rules (`message.bounced`); `delivered`
    and `open` stamp the email. An event acts once: one seen before (its sg_event_id) or outside
    the time window is ignored, so a replayed request changes nothing."""
    opted_out = updated = ignored = 0
    for event in events:
        if not isinstance(event, dict):
            continue
        if not (_within_window(event, now) and _first_time(session, event, now)):
            ignored += 1  # a replay, or too old to tell from one
            continue
        kind, address = event.get("event"), event.get("email")
        if kind in TRACKED_EVENTS:
            notification = notifications.email_notification(session=session, event=event)
            if notification is not None and notifications.email_delivered(
                notification=notification, event=kind, at=_event_time(event, now)
            ):
                updated += 1
                notifications.status_changed(session=session, notification=notification, now=now)
            if notification is not None and kind == "open":
                # Apple Mail Privacy Protection's fetch, as SendGrid tells it: not a person reading.
                machine = event.get("sg_machine_open") is True
                engagement.opened(
                    session=session,
                    notification=notification,
                    machine=machine,
                    source=engagement.SENDGRID,
                    now=now,
                )
            continue
        if kind not in OPT_OUT_EVENTS or (kind == "bounce" and event.get("type") == "blocked"):
            continue
        if not (isinstance(address, str) and "@" in address):
            continue
        source = lead_rules.COMPLAINT if kind == "spamreport" else lead_rules.BOUNCE
        changed = _opt_out(session, lead_rules.normalize_email(address), source, now)
        opted_out += len(changed)
        if kind in BOUNCE_EVENTS:
            _bounced(session, event, changed, now)
    return {"received": len(events), "opted_out": opted_out, "updated": updated, "ignored": ignored}


def forget_past_events(*, session: UnitOfWork, now: datetime) -> int:
    """Forget the sg_event_ids received longer ago than EVENT_WINDOW and CLOCK_SKEW (the daily
    retention sweep, app/domains/privacy/retention.py); returns how many. Their events can no longer be
    accepted: one stamped up to CLOCK_SKEW ahead of its arrival is by now older than the window, so
    its replay is refused by age and the memory of it serves nothing. Only SendGrid's ids: Twilio's
    signature carries no time, so a MessageSid seen once must be remembered for good, or its
    captured request (a STOP, a START) could be replayed."""
    return session.execute(
        sa.delete(ProviderDelivery)
        .where(
            ProviderDelivery.provider == PROVIDER,
            ProviderDelivery.received_at < now - (EVENT_WINDOW + CLOCK_SKEW),
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def _within_window(event: dict, now: datetime) -> bool:
    """The event happened (its `timestamp`, unix seconds) within EVENT_WINDOW before now, or at
    most CLOCK_SKEW after: an event without a usable time cannot be placed, and is ignored."""
    stamp = event.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return False
    try:
        at = datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        return False
    return now - EVENT_WINDOW <= at <= now + CLOCK_SKEW


def _first_time(session: UnitOfWork, event: dict, now: datetime) -> bool:
    """Its sg_event_id never seen before (remembered now); SendGrid gives every event one, so an
    event without it is not SendGrid's and is ignored."""
    event_id = event.get("sg_event_id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 128:
        return False
    return inbound.first_delivery(session, provider=PROVIDER, delivery_id=event_id, now=now)


def _bounced(session: UnitOfWork, event: dict, opted_out: list[Lead], now: datetime) -> None:
    """`message.bounced` (hard) for each lead this bounce concerns anew: the ones it opted out, and
    the email's own lead when the email was not yet known to have bounced (a replay: none)."""
    notification = notifications.email_notification(session=session, event=event)
    leads_of = {lead.id: lead for lead in opted_out}
    reason = str(event.get("reason") or event.get("type") or "")
    if notification is not None and notifications.email_bounced(
        notification=notification, event=str(event["event"]), reason=reason
    ):
        notifications.status_changed(session=session, notification=notification, now=now)
        lead = session.get(Lead, notification.lead_id) if notification.lead_id is not None else None
        if lead is not None and lead.deleted_at is None:
            leads_of.setdefault(lead.id, lead)
    for lead in leads_of.values():
        ours = notification is not None and notification.lead_id == lead.id
        domain_events.emit(
            session=session,
            event=MessageBounced(
                lead_id=lead.id, channel="email", notification_id=notification.id if ours else None, hard=True
            ),
            subject=domain_events.Subject.lead(lead),
            now=now,
        )


def _event_time(event: dict, now: datetime) -> datetime:
    """When the provider saw it (unix seconds), never later than now; now if it says nothing usable."""
    stamp = event.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return now
    try:
        return min(datetime.fromtimestamp(stamp, UTC), now)
    except (OverflowError, OSError, ValueError):
        return now


def _opt_out(session: UnitOfWork, address: str, source: str, now: datetime) -> list[Lead]:
    """Opt every lead with the address out of email; the leads that changed. A complaint is the
    person's own: it stands even over an opt-out staff had set (lead_consent.opted_out)."""
    rows = session.scalars(
        sa.select(Lead).where(Lead.email == address, Lead.deleted_at.is_(None)).with_for_update()
    )
    return [
        lead
        for lead in rows
        if lead_consent.opted_out(
            session=session, lead=lead, field="email_opt_out", source=source, actor_ref=ACTOR, now=now
        )
    ]
