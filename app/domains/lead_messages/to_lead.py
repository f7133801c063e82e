"""Messages to a lead, automated or sent by a person: the contact policy read from the stored facts,
then the one road of every message: render the merge fields, queue it on the notifications ledger,
log it on the lead's timeline (an OUTBOUND EMAIL, SMS or DIRECT_MESSAGE, so a reply within the
window counts for follow-up analytics and it counts as an attempt, app/domains/activities/rules.py).

`policy.decide` is the pure answer; `check_policy` reads the facts it needs (the lead's flags and
timezone, the clinic's settings, how many automated messages the lead got on its local day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from jinja2 import TemplateError

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.domains.auth.instagram import service as instagram
from app.domains.auth.models import Clinic
from app.domains.business_hours.rules import local_day_bounds
from app.domains.conversations import service as conversations
from app.domains.lead_messages import booking_link, merge_fields, policy, templates
from app.domains.lead_messages.models import BookingLinkEvent
from app.domains.leads.models import Lead
from app.domains.outbound import service as notifications
from app.domains.outbound.models import Channel, DeliveryStatus, Notification, WhatsAppTemplate
from app.platform import clock
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed

if TYPE_CHECKING:
    from app.domains.conversations.media import MediaRef

ACTIVITY_TYPES = {
    policy.EMAIL: ActivityType.EMAIL,
    policy.SMS: ActivityType.SMS,
    policy.INSTAGRAM: ActivityType.DIRECT_MESSAGE,
    policy.WHATSAPP: ActivityType.DIRECT_MESSAGE,
}
# The channels of automated messages to a lead: what the caps count.
AUTOMATED_CHANNELS = [Channel.EMAIL.value, Channel.SMS.value, Channel.INSTAGRAM.value, Channel.WHATSAPP.value]

# The notification kind of every automated message to a lead: what the daily cap counts.
MESSAGE_KIND = "automated_message"

# What a message a person sends meets: no caps, no interval.
NO_LIMITS = {"daily_cap": None, "sent_today": 0}


def automated_messages_on(*, session: UnitOfWork, lead: Lead, timezone: str, at: datetime) -> int:
    """How many automated messages the lead was sent on the local day of `at` (in `timezone`)."""
    start, end = local_day_bounds(policy.local_day(at, timezone), timezone)
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(
            Notification.lead_id == lead.id,
            Notification.kind == MESSAGE_KIND,
            Notification.channel.in_(AUTOMATED_CHANNELS),
            Notification.created_at >= start,
            Notification.created_at < end,
        )
    )


def automated_history(*, session: UnitOfWork, lead: Lead) -> tuple[int, datetime | None]:
    """How many automated messages the lead was sent in all, and when the last one was made."""
    count, last = session.execute(
        sa.select(sa.func.count(), sa.func.max(Notification.created_at)).where(
            Notification.lead_id == lead.id,
            Notification.kind == MESSAGE_KIND,
            Notification.channel.in_(AUTOMATED_CHANNELS),
        )
    ).one()
    return count, clock.as_utc(last)


def last_touch_at(*, session: UnitOfWork, lead: Lead) -> datetime | None:
    """When the lead was last contacted by anyone: the latest outbound activity on its timeline."""
    last = session.scalar(
        sa.select(sa.func.max(LeadActivity.occurred_at)).where(
            LeadActivity.lead_id == lead.id, LeadActivity.direction == ActivityDirection.OUTBOUND.value
        )
    )
    return clock.as_utc(last)


def touch_gap_until(
    *, session: UnitOfWork, lead: Lead, settings: dict | None, at: datetime
) -> datetime | None:
    """The end of the clinic's minimum gap between touches, when `at` falls inside it; else None."""
    gap = policy.touch_gap_of(settings)
    if gap is None:
        return None
    return policy.gap_until(at, gap, last_touch_at(session=session, lead=lead))


def check_policy(
    *,
    session: UnitOfWork,
    lead: Lead,
    channel: str,
    at: datetime,
    sent_as: str = policy.AUTOMATED,
    sending: int | None = None,
) -> policy.Decision:
    """The contact policy's decision for a `channel` message to `lead` at `at`, from the stored facts.

    A message a person sends (`sent_as=policy.BY_HAND`) meets the same consent, address and
    quiet-hours checks, but not the limits on automated messages; `sent_as` also chooses Meta's window
    on Instagram (`policy.instagram_window`). `sending`: the id of an automated message being handed
    to the provider, which meets the caps again (`caps_at_send`)."""
    clinic = session.get(Clinic, lead.clinic_id)
    timezone = policy.timezone_for(lead.timezone, clinic.timezone)
    opted_out = {
        policy.EMAIL: lead.email_opt_out,
        policy.SMS: lead.sms_opt_out,
        policy.WHATSAPP: lead.whatsapp_opt_out,
    }.get(channel, False)
    window = {}
    if channel == policy.INSTAGRAM:
        address = instagram.contact_of_lead(session, lead.id)
        window = {
            "window": policy.instagram_window(sent_as),
            "window_opened_at": clock.as_utc(address.last_inbound_at) if address is not None else None,
        }
    else:
        address = lead.email if channel == policy.EMAIL else lead.phone
    automated = sent_as != policy.BY_HAND
    if automated or sending is not None:
        one_decision_at_a_time(session=session, lead=lead)
    if sending is not None:
        limits = caps_at_send(
            session=session, lead=lead, settings=clinic.settings, timezone=timezone, at=at, sending=sending
        )
    else:
        limits = _limits(session, lead, clinic.settings, timezone, at) if automated else NO_LIMITS
    return policy.decide(
        policy.MessageFacts(
            channel=channel,
            do_not_contact=lead.do_not_contact,
            opted_out=opted_out,
            has_address=bool(address),
            at=at,
            timezone=timezone,
            quiet_hours=policy.quiet_hours_of(clinic.settings),
            **limits,
            **window,
        )
    )


def one_decision_at_a_time(*, session: UnitOfWork, lead: Lead) -> None:
    """The lead's limits are counted by one transaction at a time: two messages to one lead decided
    at once by two workers would each count the other as not yet there, and both go past the cap or
    the gap. The lead's row, locked until the transaction ends, makes the second wait and then count
    the first. The lock (FOR NO KEY UPDATE) holds back other updates of the lead for that short
    transaction, not the rows that only point at the lead (its activities, tasks, messages)."""
    session.execute(sa.select(Lead.id).where(Lead.id == lead.id).with_for_update(key_share=True))


# What counts as a touch that overtakes an automated message, as its reason names it.
TOUCHES = {
    ActivityType.PHONE_CALL.value: "a call",
    ActivityType.EMAIL.value: "an email",
    ActivityType.SMS.value: "a text",
    ActivityType.DIRECT_MESSAGE.value: "a direct message",
    ActivityType.IN_PERSON.value: "a visit",
}


def overtaken_since(*, session: UnitOfWork, lead: Lead, since: datetime) -> str | None:
    """Why an automated message held since `since` (quiet hours overnight, the clinic's pause, a
    queue) is overtaken by what happened meanwhile: a person's call, email, text or visit, or any
    word from the lead. None: nothing happened, it may go."""
    touch = session.execute(
        sa.select(LeadActivity.type, LeadActivity.direction)
        .where(
            LeadActivity.lead_id == lead.id,
            LeadActivity.type.in_(TOUCHES),
            LeadActivity.occurred_at > since,
            sa.or_(
                LeadActivity.direction == ActivityDirection.INBOUND.value,
                LeadActivity.actor != activities.SYSTEM,
            ),
        )
        .order_by(LeadActivity.occurred_at)
        .limit(1)
    ).first()
    if touch is None:
        return None
    if touch.direction == ActivityDirection.INBOUND.value:
        return f"the lead got in touch ({TOUCHES[touch.type]}) since it was held"
    return f"the lead was contacted ({TOUCHES[touch.type]}) since it was held"


def _limits(session: UnitOfWork, lead: Lead, settings: dict | None, timezone: str, at: datetime) -> dict:
    """The clinic's limits on automated messages to a lead, and its counts, as `MessageFacts` takes them."""
    sent_total, last_sent_at = automated_history(session=session, lead=lead)
    return {
        "daily_cap": policy.daily_cap_of(settings),
        "sent_today": automated_messages_on(session=session, lead=lead, timezone=timezone, at=at),
        "total_cap": policy.total_cap_of(settings),
        "sent_total": sent_total,
        "min_interval": policy.min_interval_of(settings),
        "last_sent_at": last_sent_at,
        "touch_gap": policy.touch_gap_of(settings),
        "last_touch_at": last_touch_at(session=session, lead=lead),
    }


# What has reached, or may have reached, the lead: a message handed over or being handed over.
_WENT = (DeliveryStatus.SENT.value, DeliveryStatus.SENDING.value, DeliveryStatus.UNKNOWN.value)


def caps_at_send(
    *, session: UnitOfWork, lead: Lead, settings: dict | None, timezone: str, at: datetime, sending: int
) -> dict:
    """The caps on automated messages (in all, and on the lead's local day of `at`) as they stand
    when the message `sending` is handed over: counted on the lead's other automated messages that
    went out (the day's by when they went), not on itself (counted when it was queued), nor on the
    ones cancelled or still waiting. Its interval and touch gap were kept when it was queued: here
    they would meet its own entry on the timeline."""
    start, end = local_day_bounds(policy.local_day(at, timezone), timezone)
    went_at = sa.func.coalesce(Notification.sent_at, Notification.sending_at)
    total, today = session.execute(
        sa.select(sa.func.count(), sa.func.count().filter(sa.and_(went_at >= start, went_at < end))).where(
            Notification.lead_id == lead.id,
            Notification.kind == MESSAGE_KIND,
            Notification.channel.in_([Channel.EMAIL.value, Channel.SMS.value]),
            Notification.id != sending,
            Notification.status.in_(_WENT),
        )
    ).one()
    return {
        "daily_cap": policy.daily_cap_of(settings),
        "sent_today": today,
        "total_cap": policy.total_cap_of(settings),
        "sent_total": total,
    }


@dataclass(frozen=True)
class Sent:
    """A message queued and logged: its notification, its timeline activity and the rendered texts."""

    notification: Notification
    activity: LeadActivity
    subject: str
    body: str


def render(
    *, session: UnitOfWork, lead: Lead, subject: str | None, body: str, extra: dict | None = None
) -> tuple[str, str]:
    """The subject and body with the lead's merge fields filled (and `extra`'s: a consultation's
    time); 400 naming `body` if they cannot be."""
    values = templates.merge_values(session=session, lead=lead, extra=extra, texts=(subject or "", body))
    try:
        return merge_fields.merge(subject or "", values), merge_fields.merge(body, values)
    except TemplateError as error:  # a template saved before today's bounds: refuse, never a 500
        raise ValidationFailed("body", f"the message text cannot be rendered: {error}") from None


def filled_template(*, session: UnitOfWork, lead: Lead, template: WhatsAppTemplate) -> WhatsAppTemplate:
    """A WhatsApp template with the lead's merge fields filled in its values ({"1": "{{ first_name }}"});
    422 naming `content_variables` if they cannot be."""
    values = templates.merge_values(session=session, lead=lead, texts=tuple(template.variables.values()))
    try:
        filled = {name: merge_fields.merge(text, values) for name, text in template.variables.items()}
    except TemplateError as error:
        raise ValidationFailed("content_variables", f"cannot be rendered: {error}") from None
    return WhatsAppTemplate(template.content_sid, filled)


@dataclass(frozen=True)
class LeadMessage:
    """A message to send a lead: its text (merge fields not yet filled), the ledger's dedupe key and
    kind, and how the lead's timeline names it (`label`, `sent_by`, `details`); `not_before`: held
    until then (quiet hours)."""

    channel: str
    subject: str | None
    body: str
    dedupe_key: str
    kind: str
    context: dict
    label: str
    sent_by: str
    details: dict
    template_id: int | None = None
    not_before: datetime | None = None
    held_by: str | None = None  # what holds it until `not_before` (quiet_hours, pacing)
    user_id: int | None = None
    merge: dict | None = None  # merge values beyond the lead's (a reminder's consultation_time)
    bulk: bool = False  # a campaign's (a sequence's) message: sent after the transactional ones
    media: MediaRef | None = None  # an image or video sent with it (checked: outbound_media.check)


def _origin(details: dict) -> dict | None:
    """What sent the message, as the thread keeps it: the ids among its details (no text)."""
    ids = {key: value for key, value in details.items() if key.endswith("_id") and isinstance(value, int)}
    return ids or None


def with_media(context: dict, media: MediaRef | None) -> dict:
    """The notification's context, with what the worker sends beside the text (sending.py reads it)."""
    if media is None:
        return context
    return {**context, "media": {"url": media.url, "kind": media.kind, "content_type": media.content_type}}


def send(*, session: UnitOfWork, lead: Lead, message: LeadMessage, now: datetime) -> Sent:
    """Render, queue on the notifications ledger and log on the lead's timeline (`label: text`), by
    `sent_by` (a person's ref, or the system's): raises ValidationFailed (`body`) before anything is
    written when the text cannot be rendered."""
    channel, template_id, sent_by = message.channel, message.template_id, message.sent_by
    subject_text, body_text = render(
        session=session, lead=lead, subject=message.subject, body=message.body, extra=message.merge
    )
    notification = notifications.send_to_lead(
        session=session,
        lead=lead,
        message=notifications.MessageToLead(
            channel=channel,
            subject=subject_text,
            body=body_text,
            dedupe_key=message.dedupe_key,
            kind=message.kind,
            context=with_media(message.context, message.media),
            not_before=message.not_before,
            bulk=message.bulk,
            as_written=message.body,  # its links are the message's own (tracked), not a merge field's
            held_by=message.held_by,
        ),
        now=now,
    )
    if "booking_link" in f"{message.subject or ''}{message.body}":
        booking_link.record(session, lead, BookingLinkEvent.SENT, now)
    template_details = {"message_template_id": template_id} if template_id is not None else {}
    conversations.record_outbound(
        session=session,
        lead=lead,
        message=conversations.Outbound(
            channel=channel,
            subject=subject_text or None,
            body=body_text,
            notification_id=notification.id,
            sender_ref=sent_by,
            sender_user_id=message.user_id,
            origin=_origin({**message.details, **template_details}),
            media=(message.media,) if message.media is not None else (),
        ),
        now=now,
    )
    activity = activities.record(
        session=session,
        lead=lead,
        facts=activities.ActivityFacts(
            type=ACTIVITY_TYPES[channel],
            at=now,
            actor_ref=sent_by,
            user_id=message.user_id,
            direction=ActivityDirection.OUTBOUND,
            notes=f"{message.label}: {(subject_text or body_text)[:200]}",
            details={"notification_id": notification.id, **message.details, **template_details},
        ),
    )
    if template_id is not None:
        templates.record_use(
            session=session,
            lead=lead,
            use=templates.TemplateUse(template_id, notification.id, channel, sent_by),
            now=now,
        )
    return Sent(notification, activity, subject_text, body_text)
