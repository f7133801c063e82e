"""What the providers report about the messages we sent: Twilio's SMS status callbacks, SendGrid's
email events (delivered, open, bounce). Each is verified by its endpoint before it comes here."""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa

from app.domains.outbound.events import MessageBounced
from app.domains.outbound.models import Channel, DeliveryStatus, Notification
from app.platform import clock
from app.platform.db import UnitOfWork
from app.platform.delivery import redaction
from app.platform.delivery import service as outbound
from app.platform.errors import ValidationFailed
from app.platform.events import service as domain_events


def status_changed(*, session: UnitOfWork, notification: Notification, now: datetime) -> None:
    """A receipt changed `notification` (delivered, opened, failed): its listeners hear of it, in
    the receipt's transaction (the lead's conversation thread, whose readers' streams say so).

    The listeners are the engine's (RECEIPT_LISTENERS of app/handlers.py, app/bootstrap.py), read
    through the unit's Database: a receipt is applied deep under a provider's callback, a SendGrid
    event or a send's recorded outcome, and the Database, built with the engine, carries them there."""
    for listener in session.database.wiring.receipt_listeners:
        listener(session=session, notification=notification, now=now)


DELIVERED_STATES = ("delivered",)
READ_STATES = ("read",)  # WhatsApp's blue ticks: the family opened it
TWILIO_CHANNELS = (Channel.SMS.value, Channel.WHATSAPP.value)  # what Twilio's callbacks report on
UNDELIVERED_STATES = ("undelivered", "failed")


def apply_status(
    *, session: UnitOfWork, form: dict, now: datetime, notification_hint: str | None = None
) -> dict:
    """Apply a verified status callback (MessageSid, MessageStatus, ErrorCode, ErrorMessage), as
    Twilio posts it (for SMS and WhatsApp): delivered stamps delivered_at, WhatsApp's read
    opened_at; undelivered/failed fails the row with the
    provider's error, unless it was delivered already; the in-between states (queued, sending,
    sent) change nothing. A message whose outcome was unknown (its SID never learnt) is found by
    `notification_hint`, the id its StatusCallback URL carries, and reconciled: Twilio has it, so
    it was sent (or failed)."""
    sid, state = (form.get("MessageSid") or "").strip(), (form.get("MessageStatus") or "").strip().lower()
    if not sid or not state:
        raise ValidationFailed({"MessageSid": ["required"]} if not sid else {"MessageStatus": ["required"]})
    notification = session.scalars(
        sa.select(Notification).where(
            Notification.provider_message_id == sid[:128], Notification.channel.in_(TWILIO_CHANNELS)
        )
    ).first()
    if notification is None and notification_hint and notification_hint.isdigit():
        notification = _unknown(session, int(notification_hint), sid[:128], now)
    if notification is None:
        return {"updated": False}  # not ours (or purged): answered 200 so the provider stops retrying
    if state in DELIVERED_STATES:
        notification.delivered_at = notification.delivered_at or now
    elif state in READ_STATES and notification.opened_at is None:
        # Read was delivered first, even when Twilio's delivered callback comes late or never.
        notification.delivered_at = notification.delivered_at or now
        notification.opened_at = now
    elif state in UNDELIVERED_STATES and notification.delivered_at is None:
        # Delivered is final: a callback with no timestamp, replayed or late, cannot undo it.
        code, text = form.get("ErrorCode") or "", form.get("ErrorMessage") or ""
        was_failed = notification.status == DeliveryStatus.FAILED
        notification.status = DeliveryStatus.FAILED
        error = f"provider reports {state}: error {code} {text}".strip()
        notification.last_error = redaction.redacted(error, notification.to_address)[: outbound.MAX_ERROR]
        if not was_failed:  # a replayed callback tells nothing new
            failed_for_good(session=session, notification=notification, now=now)
    else:
        return {"updated": False, "status": notification.status}  # queued, sent, late: nothing to record
    status_changed(session=session, notification=notification, now=now)
    return {"updated": True, "status": notification.status}


def _unknown(session: UnitOfWork, notification_id: int, sid: str, now: datetime) -> Notification | None:
    """The SMS of that id if its outcome is unknown, now known to be at Twilio: sent, with its SID."""
    notification = session.scalars(
        sa.select(Notification)
        .where(
            Notification.id == notification_id,
            Notification.channel.in_(TWILIO_CHANNELS),
            Notification.status == DeliveryStatus.UNKNOWN,
        )
        .with_for_update()
    ).first()
    if notification is not None:
        notification.status, notification.provider_message_id = DeliveryStatus.SENT, sid
        notification.sent_at, notification.last_error = notification.sent_at or now, None
    return notification


# --- email: SendGrid's Event Webhook ----------------------------------------------------------------

BOUNCED = "provider reports "  # how a bounce or drop starts last_error: the mark that makes it once


def email_notification(*, session: UnitOfWork, event: dict) -> Notification | None:
    """The email an Event Webhook event is about: by the `notification_id` SendGrid echoes from our
    X-SMTPAPI unique_args, else by the Message-ID it reports (`smtp-id`); None if it is not ours.
    The event's address must be the one the email went to."""
    notification = None
    given = str(event.get("notification_id") or "")
    if given.isdigit():
        notification = session.scalars(
            sa.select(Notification)
            .where(Notification.id == int(given), Notification.channel == Channel.EMAIL)
            .with_for_update()
        ).first()
    smtp_id = event.get("smtp-id")
    if notification is None and isinstance(smtp_id, str) and smtp_id:
        notification = session.scalars(
            sa.select(Notification)
            .where(Notification.provider_message_id == smtp_id[:128], Notification.channel == Channel.EMAIL)
            .with_for_update()
        ).first()
    address = str(event.get("email") or "").strip().lower()
    if notification is None or (notification.to_address or "").strip().lower() != address:
        return None
    return notification


def email_delivered(*, notification: Notification, event: str, at: datetime) -> bool:
    """`delivered` stamps delivered_at; `open` stamps opened_at, and delivered_at too when the
    delivery's own event comes later or never (an opened email was delivered). Each stamp keeps the
    earliest time reported: a repeated event changes nothing, a late one only moves it earlier.
    Whether anything changed."""
    before = (
        clock.as_utc(notification.delivered_at),
        clock.as_utc(notification.opened_at),
        notification.status,
    )
    notification.delivered_at = _earliest(notification.delivered_at, at)
    if event == "open":
        notification.opened_at = _earliest(notification.opened_at, at)
    if notification.status == DeliveryStatus.UNKNOWN:
        # We never heard the server take it (outcome unknown), yet it arrived: it was sent.
        notification.status, notification.last_error = DeliveryStatus.SENT, None
        notification.sent_at = notification.sent_at or at
    return before != (notification.delivered_at, notification.opened_at, notification.status)


def _earliest(stamp: datetime | None, at: datetime) -> datetime:
    return at if stamp is None else min(clock.as_utc(stamp), at)


def email_bounced(*, notification: Notification, event: str, reason: str) -> bool:
    """A hard bounce or a drop fails the email with the provider's reason; whether it was news."""
    if notification.status == DeliveryStatus.FAILED and (notification.last_error or "").startswith(BOUNCED):
        return False
    notification.status = DeliveryStatus.FAILED
    error = f"{BOUNCED}{event}: {reason}".strip()  # a bounce's reason quotes the address
    notification.last_error = redaction.redacted(error, notification.to_address)[: outbound.MAX_ERROR]
    return True


# --- a message to a lead that failed for good ------------------------------------------------------

_ERROR_CODE = re.compile(r"\berror (\d{5})\b")
INVALID_NUMBER = "21211"  # Twilio's code for a number that is not one; ours refuses it before sending


def failed_for_good(*, session: UnitOfWork, notification: Notification, now: datetime) -> None:
    """A message to a lead failed permanently (an SMTP 5xx, a provider's refusal, Twilio's
    undelivered with its error code): `message.bounced` (not `hard`: the address is not known to
    be gone) with the provider's error code, so a step's fallback channel can take over."""
    if notification.lead_id is None or notification.recipient_user_id is not None:
        return
    if notification.channel not in (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP):
        return
    error = notification.last_error or ""
    found = _ERROR_CODE.search(error)
    code = found.group(1) if found else (INVALID_NUMBER if error.startswith("invalid phone number") else None)
    domain_events.emit(
        session=session,
        event=MessageBounced(
            lead_id=notification.lead_id,
            channel=notification.channel,
            notification_id=notification.id,
            hard=False,
            permanent=True,
            error_code=code,
        ),
        subject=domain_events.Subject(notification.clinic_id, "lead", notification.lead_id),
        now=now,
    )
