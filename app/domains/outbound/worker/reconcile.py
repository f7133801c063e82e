"""Reconciliation of SMS whose outcome is unknown (the request left, no answer came).

Twilio's status callback settles most of them (receipts.py). For the rest, a beat sweep looks each
up in Twilio's message list (To, and the day it was sent) and, finding one with its text, records it
as sent with that SID. One it does not find stays `unknown` for an admin to decide: absent from the
list is not proof enough to send again, and the sweep never sends. The lookups run outside any
transaction, like sends.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.outbound.models import Channel, DeliveryStatus, Notification
from app.domains.outbound.providers import channels

log = logging.getLogger(__name__)

LOOK_BACK = timedelta(days=2)  # Twilio lists messages by day; older unknown ones wait for an admin
BATCH = 100


def reconcile_unknown_sms(*, db, now: datetime, settings) -> int:
    """Look up unknown SMS at Twilio; record those found as sent. Returns how many were."""
    if settings.sms_backend != "http" or not settings.sms_account:
        return 0
    with db.unit_of_work() as session:
        rows = session.execute(
            sa.select(Notification.id, Notification.to_address, Notification.body, Notification.sending_at)
            .where(
                Notification.status == DeliveryStatus.UNKNOWN,
                Notification.channel == Channel.SMS,
                Notification.sending_at >= now - LOOK_BACK,
            )
            .order_by(Notification.id)
            .limit(BATCH)
        ).all()
    found = {}
    for row_id, to, body, sent_at in rows:
        try:
            sid = channels.sent_sms_like(settings, to=to or "", since=sent_at or now, body=body or "")
        except Exception as exc:  # the provider unreachable: the next sweep tries again
            log.warning(
                "could not look up notification %s at the SMS provider: %s", row_id, type(exc).__name__
            )
            continue
        if sid:
            found[row_id] = sid
    if not found:
        return 0
    with db.unit_of_work() as session:
        for row_id, sid in found.items():
            session.execute(
                sa.update(Notification)
                .where(Notification.id == row_id, Notification.status == DeliveryStatus.UNKNOWN)
                .values(
                    status=DeliveryStatus.SENT, provider_message_id=sid[:128], sent_at=now, last_error=None
                )
                .execution_options(synchronize_session=False)
            )
    return len(found)
