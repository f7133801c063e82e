"""Consent at the moment a message to a lead is handed to the provider, not only when it was queued.

A message may wait hours (quiet hours, a rate-limit window, retries, an admin's retry) and in that
time the lead may text STOP, be marked do-not-contact or be erased. The notifications worker asks
this guard (SEND_GUARDS in app/handlers.py) for each claimed message to a lead: the contact policy as it
stands now (opt-out, do-not-contact, the clinic's suppression list, quiet hours in the lead's
timezone, and for an automated message the clinic's caps) cancels it, with its reason written on the
lead's timeline, or defers it to the end of the quiet hours. The caps count the lead's other
automated messages that went out: this one was counted when it was queued, and counted again it
would hold itself back (to_lead.check_policy's `sending`), one message of the lead at a time (two
workers sending two at once would each miss the other). An automated message that a person's touch
or the lead's own word has overtaken since it was queued is cancelled.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityType
from app.domains.auth.models import Clinic
from app.domains.conversations import whatsapp
from app.domains.lead_messages import policy, to_lead
from app.domains.leads import suppression
from app.domains.leads.models import Lead
from app.domains.outbound import service as notifications
from app.domains.outbound.models import Notification, WhatsAppTemplate
from app.platform import clock
from app.platform.db import UnitOfWork


def guard(
    *, session: UnitOfWork, lead_id: int, channel: str, now: datetime, notification_id: int | None = None
) -> notifications.Hold | None:
    """None: it may go now; else a Hold (`until` set: defer; unset: cancel)."""
    if channel not in policy.CHANNELS:
        return None
    lead = session.get(Lead, lead_id)
    if lead is None or lead.deleted_at is not None:
        return notifications.Hold("the lead was deleted")
    clinic = session.get(Clinic, lead.clinic_id)
    if suppression.is_suppressed(
        session=session, clinic=clinic, phones=[lead.phone, lead.phone_alt], emails=[lead.email]
    ):
        return _cancel(session, lead, channel, "the person asked to be forgotten (suppression list)", now)
    queued_at = _automated_queued_at(session, notification_id) if notification_id is not None else None
    sent_as = policy.BY_HAND if queued_at is None else _sent_as(session, notification_id, channel)
    automated = queued_at is not None
    if automated:
        overtaken = to_lead.overtaken_since(session=session, lead=lead, since=queued_at)
        if overtaken is not None:
            return _cancel(session, lead, channel, overtaken, now)
    decision = to_lead.check_policy(
        session=session,
        lead=lead,
        channel=channel,
        at=now,
        sent_as=sent_as,
        sending=notification_id if automated else None,
    )
    if decision.verdict == policy.SEND and channel == policy.WHATSAPP:
        closed = _whatsapp_window_closed(session, lead, notification_id, now)
        return None if closed is None else _cancel(session, lead, channel, closed, now)
    if decision.verdict == policy.SEND:
        return None
    if decision.verdict == policy.MOVE:
        return notifications.Hold(decision.reason, until=decision.to, held_by=decision.held_by)
    return _cancel(session, lead, channel, decision.reason, now)


def _whatsapp_window_closed(session: UnitOfWork, lead: Lead, notification_id: int | None, now: datetime):
    """Why a free-form WhatsApp message may no longer go (held past the 24-hour window: WhatsApp would
    refuse it, error 63016), or None; a template goes at any time."""
    if notification_id is None:
        return None
    context = session.scalar(sa.select(Notification.context).where(Notification.id == notification_id))
    if WhatsAppTemplate.queued_in(context) is not None:
        return None
    return whatsapp.window_closed(session, lead.id, now)


def _automated_queued_at(session: UnitOfWork, notification_id: int) -> datetime | None:
    """When the message was queued, if it is an automated one; None for a message a person sent."""
    found = session.execute(
        sa.select(Notification.kind, Notification.created_at).where(Notification.id == notification_id)
    ).first()
    return clock.as_utc(found.created_at) if found and found.kind == to_lead.MESSAGE_KIND else None


def _sent_as(session: UnitOfWork, notification_id: int, channel: str) -> str:
    """Who an automated message goes as: on Instagram, the follow-up pass's go under Meta's
    human-agent policy (their context says so); elsewhere it changes nothing, so the encrypted
    context is not read."""
    if channel != policy.INSTAGRAM:
        return policy.AUTOMATED
    context = session.scalar(sa.select(Notification.context).where(Notification.id == notification_id))
    return (context or {}).get("sent_as", policy.AUTOMATED)


def _cancel(session: UnitOfWork, lead: Lead, channel: str, reason: str, now: datetime) -> notifications.Hold:
    activities.record(
        session=session,
        lead=lead,
        automation=False,
        facts=activities.ActivityFacts(
            type=ActivityType.NOTE,
            at=now,
            recorded_at=now,
            notes=f"{channel.upper()} not sent: {reason}",
            details={"send_time_check": True, "channel": channel, "reason": reason},
        ),
    )
    return notifications.Hold(reason)
