"""Inbound SMS and email from a provider webhook: matched to an open lead, logged, STOP honoured.

The webhook is signed like the web form (same headers, window and replay refusal). A message is
recorded once per provider message id as an INBOUND activity on the lead it came from; that
activity's `activity.logged` event then stops the lead's outreach (app/domains/sequences/stops.py),
and it is a message of the lead's conversation (app/domains/conversations). An SMS of
STOP
(or STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT — the carriers' opt-out words) also opts the number
out of SMS: every lead of the clinic with it, closed ones included. A message from a number or
address that matches no open lead of the clinic is kept in an unknown sender's conversation (the
inbox shows it; staff link it to a lead or capture it as one), once per message id; a sender that
is no phone number or address at all (a short code) is answered 200 and not stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.domains.auth.models import Clinic
from app.domains.conversations import service as conversations
from app.domains.intake.inbound.models import InboundMessage, ProviderDelivery
from app.domains.leads import consent
from app.domains.leads import rules as lead_rules
from app.domains.leads.models import OPEN_STATUSES, Lead
from app.platform.db import UnitOfWork

SMS, EMAIL, INSTAGRAM, WHATSAPP = "sms", "email", "instagram", "whatsapp"
PHONE_CHANNELS = (SMS, WHATSAPP)  # a sender is a phone number: a lead is matched by its phone
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
ACTIVITY_TYPES = {
    SMS: ActivityType.SMS,
    EMAIL: ActivityType.EMAIL,
    INSTAGRAM: ActivityType.DIRECT_MESSAGE,
    WHATSAPP: ActivityType.DIRECT_MESSAGE,
}
OPT_OUT_FIELDS = {SMS: "sms_opt_out", WHATSAPP: "whatsapp_opt_out"}  # what a STOP on each opts out of
ACTOR = "inbound_webhook"  # not "system": an inbound message is the lead's own contact


@dataclass
class InboundAnswer:
    matched: bool
    lead_id: int | None = None
    activity_id: int | None = None
    opted_out: bool = False

    @classmethod
    def of(cls, row: InboundMessage) -> InboundAnswer:
        return cls(matched=True, lead_id=row.lead_id, activity_id=row.activity_id, opted_out=row.opted_out)


def is_stop(body: str) -> bool:
    """An SMS that opts out: one of the stop words alone (any case, surrounding blanks and dots ignored)."""
    return body.strip().strip(".!").strip().upper() in STOP_WORDS


def sender_key(*, channel: str, sender: str, region: str) -> str | None:
    """What a lead is looked up by: the E.164 phone, or the lower-cased address; None if unusable."""
    if channel in PHONE_CHANNELS:
        try:
            return lead_rules.normalize_phone(sender, region)
        except lead_rules.InvalidPhone:
            return None  # a short code or alphanumeric sender: nobody we can match
    address = parseaddr(sender)[1]
    return lead_rules.normalize_email(address) if "@" in address else None


def match_lead(*, session: UnitOfWork, clinic: Clinic, channel: str, sender: str) -> Lead | None:
    """The clinic's open lead the message came from (the most recently changed one if several)."""
    key = sender_key(channel=channel, sender=sender, region=clinic.default_phone_region)
    if key is None:
        return None
    by = sa.or_(Lead.phone == key, Lead.phone_alt == key) if channel in PHONE_CHANNELS else Lead.email == key
    return session.scalar(
        sa.select(Lead)
        .where(
            Lead.clinic_id == clinic.id,
            Lead.deleted_at.is_(None),
            Lead.status.in_([s.value for s in OPEN_STATUSES]),
            by,
        )
        .order_by(Lead.updated_at.desc(), Lead.id.desc())
        .limit(1)
        .with_for_update()
    )


def find_seen(session: UnitOfWork, clinic_id: int, channel: str, message_id: str) -> InboundMessage | None:
    return session.scalar(
        sa.select(InboundMessage).where(
            InboundMessage.clinic_id == clinic_id,
            InboundMessage.channel == channel,
            InboundMessage.message_id == message_id,
        )
    )


def receive(*, session: UnitOfWork, clinic_id: int, message: dict, now: datetime) -> InboundAnswer:
    """Record a verified inbound message on its lead, once per message id; unmatched → nothing stored."""
    channel, message_id = message["channel"], message["message_id"]
    seen = find_seen(session, clinic_id, channel, message_id)
    if seen is not None:
        return InboundAnswer.of(seen)
    clinic = session.get(Clinic, clinic_id)
    lead = match_lead(session=session, clinic=clinic, channel=channel, sender=message["from"])
    received_at = min(message.get("received_at") or now, now)  # a provider clock ahead of ours
    if lead is None:
        _from_unknown_sender(session, clinic, message, received_at, now)
        return InboundAnswer(matched=False)
    row, _ = record_once(
        session,
        clinic_id,
        channel,
        message_id,
        lambda: record_reply(session, lead, message, received_at, now),
    )
    return InboundAnswer.of(row)


def clinic_exists(session: UnitOfWork, clinic_id: int) -> bool:
    return session.get(Clinic, clinic_id) is not None


def _from_unknown_sender(
    session: UnitOfWork, clinic: Clinic, message: dict, received_at: datetime, now: datetime
) -> None:
    """Keep a message nobody's lead sent in its sender's conversation (never dropped, never twice)."""
    channel = message["channel"]
    address = sender_key(channel=channel, sender=message["from"], region=clinic.default_phone_region)
    if address is None:
        return
    conversation = conversations.unknown_sender_conversation(
        session=session, clinic_id=clinic.id, channel=channel, address=address, now=now
    )
    conversations.record_inbound_once(
        session=session, conversation=conversation, message=as_inbound(message, received_at), now=now
    )


def as_inbound(message: dict, received_at: datetime) -> conversations.Inbound:
    """The thread's copy of a verified inbound message (`full_body`: an email with its quoted history)."""
    return conversations.Inbound(
        channel=message["channel"],
        provider_message_id=message["message_id"],
        body=message.get("shown_body") or message["body"],
        full_body=message.get("full_body"),
        subject=message.get("subject"),
        occurred_at=received_at,
        auto_reply=bool(message.get("auto_reply")),
        media=tuple(message.get("media") or ()),
    )


def first_delivery(session: UnitOfWork, *, provider: str, delivery_id: str, now: datetime) -> bool:
    """True the first time a provider's delivery id is seen, remembering it (in this transaction);
    False for a replay or a retry of one already acted on. Its twin in another web process waits on
    the unique key until this transaction ends, and loses then."""
    try:
        with session.begin_nested():
            session.add(ProviderDelivery(provider=provider, delivery_id=delivery_id, received_at=now))
            session.flush()
    except IntegrityError:
        return False
    return True


def record_once(
    session: UnitOfWork, clinic_id: int, channel: str, message_id: str, write: Callable[[], InboundMessage]
) -> tuple[InboundMessage, bool]:
    """`write()` the message's row (and what it records) unless a concurrent twin of this delivery
    already did: (the row, whether this call wrote it)."""
    try:
        with session.begin_nested():  # the twin loses on the unique key, not the whole transaction
            return write(), True
    except IntegrityError:
        seen = find_seen(session, clinic_id, channel, message_id)
        if seen is None:
            raise
        return seen, False


def store(
    session: UnitOfWork,
    *,
    activity: LeadActivity,
    channel: str,
    message_id: str,
    now: datetime,
    opted_out: bool = False,
) -> InboundMessage:
    """The stored inbound message, call or reply, of the lead whose `activity` logs it (received
    when the activity happened): the one builder of an InboundMessage row."""
    row = InboundMessage(
        clinic_id=activity.clinic_id,
        channel=channel,
        message_id=message_id,
        lead_id=activity.lead_id,
        activity_id=activity.id,
        opted_out=opted_out,
        received_at=activity.occurred_at,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def record_reply(
    session: UnitOfWork, lead: Lead, message: dict, received_at: datetime, now: datetime
) -> InboundMessage:
    channel = message["channel"]
    stop = channel in PHONE_CHANNELS and is_stop(message["body"])
    if stop:
        # Before the activity: the opt-out's event is processed first, so the enrollments end
        # as "opted_out" rather than "replied".
        # The number, not the one lead: a sibling or duplicate lead with it (closed ones included)
        # would otherwise keep being texted.
        clinic = session.get(Clinic, lead.clinic_id)
        for each in dict.fromkeys([lead, *leads_with_number(session, clinic, message["from"])]):
            set_opt_out(session=session, lead=each, field=OPT_OUT_FIELDS[channel], opted_out=True, now=now)
    activity = activities.record(
        session=session,
        lead=lead,
        facts=activities.ActivityFacts(
            type=ACTIVITY_TYPES[channel],
            at=received_at,
            recorded_at=now,
            actor_ref=ACTOR,
            direction=ActivityDirection.INBOUND,
            notes=message.get("shown_body") or message["body"],
            # A channel's own facts (Instagram's attachment kinds) beside the common ones.
            details={
                **(message.get("details") or {}),
                "message_id": message["message_id"],
                "channel": channel,
                "stop": stop,
            },
        ),
    )
    conversation = conversations.conversation_of(session=session, lead=lead, now=now)
    conversations.record_inbound(
        session=session, conversation=conversation, message=as_inbound(message, received_at), now=now
    )
    return store(
        session, activity=activity, channel=channel, message_id=message["message_id"], now=now, opted_out=stop
    )


def leads_with_number(session: UnitOfWork, clinic: Clinic, sender: str) -> list[Lead]:
    """Every lead of the clinic with this phone (main or alternate), whatever its status."""
    key = sender_key(channel=SMS, sender=sender, region=clinic.default_phone_region)
    if key is None:
        return []
    return list(
        session.scalars(
            sa.select(Lead)
            .where(
                Lead.clinic_id == clinic.id,
                Lead.deleted_at.is_(None),
                sa.or_(Lead.phone == key, Lead.phone_alt == key),
            )
            .order_by(Lead.id)
            .with_for_update()
        )
    )


def set_sms_opt_out(*, session: UnitOfWork, lead: Lead, opted_out: bool, now: datetime) -> None:
    set_opt_out(session=session, lead=lead, field="sms_opt_out", opted_out=opted_out, now=now)


def set_opt_out(*, session: UnitOfWork, lead: Lead, field: str, opted_out: bool, now: datetime) -> None:
    """The person's STOP or START by text (`sms_opt_out`) or on WhatsApp (`whatsapp_opt_out`):
    audited, with a lead.updated event (an opt-out ends the lead's sequences); a STOP only they
    undo (app/domains/leads/consent.py)."""
    if opted_out:
        consent.opted_out(
            session=session, lead=lead, field=field, source=lead_rules.SMS_STOP, actor_ref=ACTOR, now=now
        )
    else:
        consent.opted_in(session=session, lead=lead, field=field, actor_ref=ACTOR, now=now)
