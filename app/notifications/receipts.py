"""The SMS provider's delivery-status webhook: signed, fresh, first-seen receipts update the rows."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.auth import signing
from app.delivery import service as outbound
from app.errors import NotFound, Unauthorized, ValidationFailed
from app.notifications.models import Channel, DeliveryStatus, Notification

DELIVERED_STATES = ("delivered",)
UNDELIVERED_STATES = ("undelivered", "failed")


def verify_signature(
    *, redis, secret: str | None, body: bytes, timestamp: str | None, signature: str | None, now: datetime
) -> None:
    """Signed like a web form (app/auth/signing.py): X-Followup-Signature is the hex HMAC-SHA256 of
    f"{timestamp}.{raw body}", X-Followup-Timestamp unix seconds within 5 minutes of now, and each
    signature accepted once (remembered in Redis past the window). Why: a receipt captured on the way
    and sent again later must not turn a message that was sent into a failed one."""
    if not secret:
        raise NotFound("the SMS status webhook is not configured (SMS_WEBHOOK_SECRET)")
    if not (signature and timestamp):
        raise Unauthorized("missing X-Followup-Timestamp or X-Followup-Signature")
    if not signing.timestamp_fresh(timestamp, now):
        raise Unauthorized("stale X-Followup-Timestamp: sign with the current time")
    if not signing.signature_matches(secret, timestamp, body, signature):
        raise Unauthorized("bad signature")
    digest = signature.strip().removeprefix("sha256=").lower()
    if not redis.set(
        f"followup:sms-receipt-signature:{digest}", "1", nx=True, ex=signing.REPLAY_MEMORY_SECONDS
    ):
        raise Unauthorized("replayed receipt: this signature was already used")


def sms_status_update(
    *,
    session: Session,
    redis,
    secret: str | None,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    form: dict,
    now: datetime,
) -> dict:
    """Apply a signed, fresh, first-seen delivery receipt: delivered stamps delivered_at;
    undelivered/failed fails the row."""
    verify_signature(redis=redis, secret=secret, body=body, timestamp=timestamp, signature=signature, now=now)
    return apply_status(session=session, form=form, now=now)


def apply_status(
    *, session: Session, form: dict, now: datetime, notification_hint: str | None = None
) -> dict:
    """Apply a verified status callback (MessageSid, MessageStatus, ErrorCode, ErrorMessage), as
    Twilio posts it: delivered stamps delivered_at; undelivered/failed fails the row with the
    provider's error; the in-between states (queued, sending, sent) change nothing. A message whose
    outcome was unknown (its SID never learnt) is found by `notification_hint`, the id its
    StatusCallback URL carries, and reconciled: Twilio has it, so it was sent (or failed)."""
    sid, state = (form.get("MessageSid") or "").strip(), (form.get("MessageStatus") or "").strip().lower()
    if not sid or not state:
        raise ValidationFailed({"MessageSid": ["required"]} if not sid else {"MessageStatus": ["required"]})
    notification = session.scalars(
        sa.select(Notification).where(
            Notification.provider_message_id == sid[:128], Notification.channel == Channel.SMS
        )
    ).first()
    if notification is None and notification_hint and notification_hint.isdigit():
        notification = _unknown(session, int(notification_hint), sid[:128], now)
    if notification is None:
        return {"updated": False}  # not ours (or purged): answered 200 so the provider stops retrying
    if state in DELIVERED_STATES:
        notification.delivered_at = notification.delivered_at or now
    elif state in UNDELIVERED_STATES:
        code, text = form.get("ErrorCode") or "", form.get("ErrorMessage") or ""
        notification.status = DeliveryStatus.FAILED
        notification.last_error = f"provider reports {state}: error {code} {text}".strip()[
            : outbound.MAX_ERROR
        ]
    else:
        return {"updated": False, "status": notification.status}  # queued, sent, ...: nothing to record
    return {"updated": True, "status": notification.status}


def _unknown(session: Session, notification_id: int, sid: str, now: datetime) -> Notification | None:
    """The SMS of that id if its outcome is unknown, now known to be at Twilio: sent, with its SID."""
    notification = session.scalars(
        sa.select(Notification)
        .where(
            Notification.id == notification_id,
            Notification.channel == Channel.SMS,
            Notification.status == DeliveryStatus.UNKNOWN,
        )
        .with_for_update()
    ).first()
    if notification is not None:
        notification.status, notification.provider_message_id = DeliveryStatus.SENT, sid
        notification.sent_at, notification.last_error = notification.sent_at or now, None
    return notification
