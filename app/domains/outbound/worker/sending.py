"""What single and batch deliveries share: the claimed row's columns, the message built from it,
the provider rate limit checked at the claim, one send and what its error means, the retry policy."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa

from app.domains.auth import signing
from app.domains.auth.instagram import service as instagram
from app.domains.auth.models import Clinic
from app.domains.outbound import outgoing
from app.domains.outbound.models import Channel, DeliveryStatus, Notification, WhatsAppTemplate
from app.domains.outbound.providers import channels, transport
from app.domains.outbound.providers.pacing import Pacers
from app.domains.outbound.worker import rate_limits
from app.platform import clock
from app.platform.db import UnitOfWork
from app.platform.delivery import redaction
from app.platform.delivery import rules as delivery_rules
from app.platform.scheduling import service as scheduling

log = logging.getLogger(__name__)

_COLUMNS = (
    "id",
    "clinic_id",
    "lead_id",
    "recipient_user_id",
    "channel",
    "to_address",
    "title",
    "body",
    "body_html",
    "dedupe_key",
    "attempts",
    "bulk",
)
# The channels that carry an image or video beside the text (an MMS, WhatsApp, an Instagram attachment).
MEDIA_CHANNELS = ("sms", "whatsapp", "instagram")
CLAIMED = [getattr(Notification.__table__.c, name) for name in _COLUMNS]  # what a claim returns
_CLINIC_SETTINGS = sa.select(Clinic.__table__.c.settings).where(
    Clinic.__table__.c.id == sa.bindparam("clinic_id")
)


@dataclass(frozen=True)
class Attempt:
    """One send of a claimed message and how it went (status: sent, failed or pending = retry)."""

    message: channels.Outgoing
    number: int  # the row's attempts after its claim: the outcome is written only if still so
    status: str
    provider_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Hold:
    """A send-time guard's answer: the message may not go now: cancelled, or (`until`) deferred."""

    reason: str
    until: datetime | None = None
    held_by: str | None = None  # deferred: what holds it (delivery rules' HOLD_REASONS)


@dataclass(frozen=True)
class SendHooks:
    """What the domains above notifications do as a message goes, which notifications cannot import:
    the engine's (app/bootstrap.py, from SEND_GUARDS and COMPOSERS of app/handlers.py), bound to the
    delivery claims (attempts.claim_delivery, batches.claim_batch) that pass them down here.

    `guards`: called for each claimed message to a lead, just before it is handed to the provider,
    with (session=, lead_id=, channel=, notification_id=, now=) -> Hold | None (messaging's contact
    policy: a held, retried or re-queued message must meet the policy of the moment it goes, not of
    the moment it was queued). `composers`: called as each claimed message is built, with
    (session=, row=, settings=, text=, html=) -> (text, html): what goes instead of the stored texts
    (engagement's tracked links, its open pixel); the stored row keeps the texts as written."""

    guards: tuple[Callable[..., Hold | None], ...] = ()
    composers: tuple[Callable[..., tuple[str, str | None]], ...] = ()


def held_at_send(
    session: UnitOfWork, row, now: datetime, guards: Iterable[Callable[..., Hold | None]]
) -> bool:
    """Ask the send-time guards about a claimed message to a lead: cancel it or defer it (back to
    pending, not counted as an attempt). Whether it was held."""
    if row.lead_id is None or row.recipient_user_id is not None:
        return False  # a message to staff (about a lead, perhaps) is not the lead's to consent to
    for guard in guards:
        hold = guard(
            session=session, lead_id=row.lead_id, channel=row.channel, notification_id=row.id, now=now
        )
        if hold is None:
            continue
        if hold.until is None:
            _hand_back(session, row, status=DeliveryStatus.CANCELLED, why=f"cancelled: {hold.reason}")
            log.info("notification %s cancelled at send time", row.id)
        else:
            why = f"held until {hold.until.isoformat()}: {hold.reason}"
            _defer(session, row, (hold.until, hold.held_by), why, now)
        return True
    return False


def deferred_by_rate_limit(session: UnitOfWork, row, now: datetime, cache: dict | None = None) -> bool:
    """Over the clinic's provider rate limit (rate_limits.py): back to pending, not counted as an
    attempt, with a delivery job due when the window ends. Whether it was deferred."""
    held = rate_limits.held_until(session, clinic_id=row.clinic_id, channel=row.channel, now=now, cache=cache)
    if held is None:
        return False
    until, why = held
    _defer(session, row, (until, delivery_rules.PACING), why, now)  # the clinic's pace with its provider
    return True


def _defer(session: UnitOfWork, row, hold: tuple[datetime, str | None], why: str, now: datetime) -> None:
    """Back to pending until `hold`'s time, the hold (time, what holds it) written on the row."""
    until, held_by = hold
    values = {"next_attempt_at": until, "held_until": until, "held_by": held_by}
    _hand_back(session, row, status=DeliveryStatus.PENDING, why=why, **values)
    job = outgoing.delivery_job(row.id, row.clinic_id, until, bulk=row.bulk)
    session.schedule(scheduling.Job(now=now, **job))


def _hand_back(session: UnitOfWork, row, *, status: str, why: str, **values) -> None:
    """The claimed row out of `sending` without an attempt spent on it."""
    session.execute(
        sa.update(Notification)
        .where(Notification.id == row.id)
        .values(
            status=status,
            attempts=Notification.attempts - 1,
            sending_at=None,
            last_error=why[:500],
            **values,
        )
        .execution_options(synchronize_session=False)
    )


def message_of(
    session: UnitOfWork, row, settings, composers: Iterable[Callable], senders: dict | None = None
) -> channels.Outgoing:
    """What to send for a claimed row (`row` has the CLAIMED columns); `senders` caches the From
    address per clinic across one batch."""
    if row.channel == Channel.INSTAGRAM:
        return with_media(session, row, instagram_message(session, row))
    if row.channel == Channel.WHATSAPP:
        return with_media(session, row, whatsapp_message(session, row, settings))
    if row.channel == Channel.SMS:
        sender = sms_sender(clinic_settings(session, row.clinic_id), settings)
    elif senders is not None and row.clinic_id in senders:
        sender = senders[row.clinic_id]
    else:
        sender = _email_sender(session, row.clinic_id, settings)
        if senders is not None:
            senders[row.clinic_id] = sender
    text, html = row.body, row.body_html
    for composer in composers:
        text, html = composer(session=session, row=row, settings=settings, text=text, html=html)
    outgoing = channels.Outgoing(
        notification_id=row.id,
        channel=row.channel,
        to=row.to_address or "",
        sender=sender,
        subject=row.title,
        text=text,
        html=html,
        dedupe_key=row.dedupe_key,
        unsubscribe_url=unsubscribe_url(row, settings),
        unsubscribe_mailto=unsubscribe_mailto(row, settings),
        reply_to=reply_address(row, settings),
    )
    return with_media(session, row, outgoing) if row.channel in MEDIA_CHANNELS else outgoing


def with_media(session: UnitOfWork, row, outgoing: channels.Outgoing) -> channels.Outgoing:
    """The message with the image or video queued beside its text (its context's `media`): read
    for a channel that carries media only, so an email's claim decrypts no context."""
    media = stored_context(session, row.id).get("media")
    if not isinstance(media, dict) or not media.get("url"):
        return outgoing
    return replace(outgoing, media_url=media["url"], media_kind=media.get("kind"))


def instagram_message(session: UnitOfWork, row) -> channels.Outgoing:
    """A DM as the clinic's connected account (its id the sender, its token the credential), with
    Meta's human-agent tag once 24 hours have passed since the family's last message: only a person's
    reply, or the follow-up pass's message released on the clinic's behalf, goes that late (the
    contact policy cancels any other automated one, at_send)."""
    account = instagram.account_of(session, row.clinic_id)
    now = clock.now()  # Meta's window is counted when the message reaches it, not when it was queued
    last = instagram.last_inbound_at(session, row.lead_id) if row.lead_id is not None else None
    late = last is not None and now - clock.as_utc(last) >= instagram.AUTOMATED_WINDOW
    if account is not None:
        instagram.mark_used(session, account, now)
    return channels.Outgoing(
        notification_id=row.id,
        channel=row.channel,
        to=row.to_address or "",
        sender=account.account_id if account is not None else "",
        subject=row.title,
        text=row.body,
        html=None,
        dedupe_key=row.dedupe_key,
        credential=account.access_token if account is not None else None,
        tag=instagram.HUMAN_AGENT_TAG if late else None,
    )


def whatsapp_message(session: UnitOfWork, row, settings) -> channels.Outgoing:
    """A WhatsApp message from the clinic's WhatsApp sender, as its text or, when it was queued as
    one (outside WhatsApp's 24-hour window), as its approved template (conversations/whatsapp.py)."""
    context = session.scalar(sa.select(Notification.context).where(Notification.id == row.id))
    template = WhatsAppTemplate.queued_in(context)
    return channels.Outgoing(
        notification_id=row.id,
        channel=row.channel,
        to=row.to_address or "",
        sender=whatsapp_sender(clinic_settings(session, row.clinic_id), settings),
        subject=row.title,
        text=row.body,
        html=None,
        dedupe_key=row.dedupe_key,
        content_sid=template.content_sid if template is not None else None,
        content_variables=template.variables_json() if template is not None else None,
    )


def whatsapp_sender(clinic_settings: dict | None, settings) -> str:
    """The From of a clinic's WhatsApp messages: its own WhatsApp number, else WHATSAPP_FROM."""
    return (clinic_settings or {}).get("whatsapp_number") or settings.whatsapp_from or ""


def reply_address(row, settings) -> str | None:
    """reply+<signed lead token>@EMAIL_INBOUND_DOMAIN: SendGrid's Inbound Parse posts the lead's
    reply to us, and the address says whose it is."""
    if not settings.email_inbound_domain or not settings.secret_key or not _to_lead(row, Channel.EMAIL):
        return None
    token = signing.unsubscribe_token(settings.secret_key, row.lead_id, "reply")
    return f"reply+{token}@{settings.email_inbound_domain}"


def _to_lead(row, channel: str) -> bool:
    return row.channel == channel and row.lead_id is not None and row.recipient_user_id is None


def unsubscribe_url(row, settings) -> str | None:
    """An email to a lead (not to staff about one) carries its signed one-click unsubscribe URL."""
    if row.channel != Channel.EMAIL or row.lead_id is None or row.recipient_user_id is not None:
        return None
    if not settings.secret_key:
        return None
    token = signing.unsubscribe_token(settings.secret_key, row.lead_id)
    return f"{settings.public_base_url.rstrip('/')}/api/unsubscribe/{token}"


def unsubscribe_mailto(row, settings) -> str | None:
    """mailto:unsubscribe+<the one-click token>@EMAIL_INBOUND_DOMAIN: an email to it reaches us
    through SendGrid's Inbound Parse and opts the lead out (app/domains/intake/inbound/email_replies.py)."""
    if not settings.email_inbound_domain or not settings.secret_key or not _to_lead(row, Channel.EMAIL):
        return None
    token = signing.unsubscribe_token(settings.secret_key, row.lead_id)
    return f"mailto:unsubscribe+{token}@{settings.email_inbound_domain}?subject=unsubscribe"


def _email_sender(session: UnitOfWork, clinic_id: int, settings) -> str:
    return email_sender(clinic_settings(session, clinic_id), settings)


def stored_context(session: UnitOfWork, notification_id: int) -> dict:
    """A claimed message's context (what goes beside its texts), read only where it is needed: a
    claim does not decrypt it."""
    context = session.scalar(sa.select(Notification.context).where(Notification.id == notification_id))
    return context if isinstance(context, dict) else {}


def clinic_settings(session: UnitOfWork, clinic_id: int) -> dict | None:
    """The clinic's settings (its From address, its provider rate limits)."""
    return session.connection().execute(_CLINIC_SETTINGS, {"clinic_id": clinic_id}).scalar()


def email_sender(clinic_settings: dict | None, settings) -> str:
    """The From of a clinic's emails: its own name and address, else the system's."""
    values = clinic_settings or {}
    return channels.format_sender(
        values.get("email_from_name"), values.get("email_from") or settings.email_from
    )


def sms_sender(clinic_settings: dict | None, settings) -> str:
    """The From of a clinic's SMS: its Messaging Service, else its own number, else SMS_FROM; its own
    sender is also how Twilio's inbound texts are routed back to it."""
    values = clinic_settings or {}
    return values.get("sms_messaging_service_sid") or values.get("sms_number") or settings.sms_from or ""


def sender_of(message: channels.Outgoing) -> str | None:
    """The From a message is recorded under: an email's plain address, else the number, Messaging
    Service or account it went from."""
    sender = transport.address_of(message.sender) if message.channel == Channel.EMAIL else message.sender
    return (sender or "")[:64] or None


OUTCOME_UNKNOWN = "outcome unknown"  # how the error of a send nobody answered for starts
Outcome = tuple[str, str | None, str | None]  # (status: sent, failed or pending = retry; provider id; error)


def send(message: channels.Outgoing, settings, pacers: Pacers) -> Outcome:
    """The outcome of one send, at its sender's pace (`pacers`: the engine's); never raises."""
    try:
        return outcome_of(message, channels.send(message, settings, pacers))
    except Exception as exc:
        return outcome_of(message, exc)


def send_batch(messages: list[channels.Outgoing], settings, pacers: Pacers, *, stop) -> list[Outcome | None]:
    """The outcome of each send, in order (None: not sent, `stop()` came first); never raises."""
    results = channels.send_each(messages, settings, pacers, stop=stop)
    return [
        None if result is None else outcome_of(message, result)
        for message, result in zip(messages, results, strict=True)
    ]


def outcome_of(message: channels.Outgoing, result: str | Exception) -> Outcome:
    """What a send's result (the provider's id, or the error it raised) means for the message. The
    error's text names no recipient (providers quote the number or address): it is stored, shown,
    audited and logged as it is returned here."""
    if isinstance(result, str):
        return DeliveryStatus.SENT, result, None
    error = redaction.redacted(str(result), message.to)
    if isinstance(result, channels.PermanentError):
        return DeliveryStatus.FAILED, None, error
    if isinstance(result, channels.OutcomeUnknown):
        # Neither Twilio's Messages API nor SMTP dedupes a re-send: a retry could reach the lead
        # twice. `unknown` (not `failed`) keeps it out of every bulk retry (notifications/admin.py).
        return DeliveryStatus.UNKNOWN, None, f"{OUTCOME_UNKNOWN}, may already have reached the lead: {error}"
    if isinstance(result, channels.TransientError):
        return DeliveryStatus.PENDING, None, error
    # A bug or an odd provider answer: retried, and dead if it persists. The traceback's frames are
    # logged without the exception's own text, which may quote the recipient.
    frames = "".join(traceback.format_tb(result.__traceback__))
    log.error(
        "sending notification %s failed unexpectedly: %s: %s\n%s",
        message.notification_id, type(result).__name__, error, frames,
    )  # fmt: skip
    return DeliveryStatus.PENDING, None, f"{type(result).__name__}: {error}"


def retry_policy(settings) -> delivery_rules.RetryPolicy:
    """How a failed message is retried (from settings)."""
    return delivery_rules.RetryPolicy(
        max_attempts=settings.notification_max_attempts,
        base_seconds=settings.notification_retry_base_seconds,
        cap_seconds=settings.notification_retry_max_seconds,
    )
