"""Engagement: the links of a message to a lead rewritten through the engine's redirect as it goes,
the family's clicks and opens recorded, and `link.clicked` / `email.opened` emitted once per message
(and link) for rules and sequences to use.

The clinic's settings (all optional):
  track_links          default on: links in emails and SMS to leads go through /r/<token>
  open_pixel           default off: an email to a lead carries a 1x1 image, /o/<token>.gif
  count_machine_opens  default off: a mail proxy's fetch (Apple Mail Privacy Protection, Gmail's
                       image proxy; SendGrid's sg_machine_open) counts as an open
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.engagement import links
from app.domains.engagement.events import EmailOpened, LinkClicked
from app.domains.engagement.models import MessageClick, MessageOpen
from app.domains.outbound import service as notifications
from app.domains.outbound.models import Channel, Notification
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound
from app.platform.events import service as domain_events

SENDGRID, PIXEL = "sendgrid", "pixel"


def track_links_on(clinic_settings: dict | None) -> bool:
    return (clinic_settings or {}).get("track_links", True) is not False


def pixel_on(clinic_settings: dict | None) -> bool:
    return (clinic_settings or {}).get("open_pixel") is True


def machine_opens_count(clinic_settings: dict | None) -> bool:
    return (clinic_settings or {}).get("count_machine_opens") is True


# --- as a message goes (a compose hook of app/domains/outbound/worker/sending.py) ------------------


def tracked(*, session: UnitOfWork, row, settings, text: str, html: str | None) -> tuple[str, str | None]:
    """The texts of a claimed message as they go: a message to a lead has its links through the
    redirect (where the clinic tracks them) and an email the open pixel (where it allows it).
    The same row always goes the same way: a retry sends what the first attempt sent."""
    to_lead = row.lead_id is not None and row.recipient_user_id is None
    if not to_lead or row.channel not in (Channel.EMAIL, Channel.SMS) or not settings.secret_key:
        return text, html
    if row.channel == Channel.SMS and "://" not in text:
        return text, html  # a text without a link: nothing to track, no settings to read
    clinic_settings = notifications.clinic_settings(session, row.clinic_id)  # one cached statement
    base = settings.public_base_url.rstrip("/")
    if track_links_on(clinic_settings) and "://" in f"{text}{html or ''}":
        # Only the links the message's own text wrote (its context keeps it): never a merge field's.
        as_written = notifications.stored_context(session, row.id).get(notifications.AS_WRITTEN)
        found = links.trackable(text, html, as_written)
        if found:

            def url(index: int) -> str:
                return f"{base}/r/{links.click_token(settings.secret_key, row.id, index, found[index])}"

            text = links.rewritten_text(text, found, url)
            html = links.rewritten_html(html, found, url) if html else html
    if html and row.channel == Channel.EMAIL and pixel_on(clinic_settings):
        pixel = f"{base}/o/{links.open_token(settings.secret_key, row.id)}.gif"
        html = f'{html}<img src="{pixel}" width="1" height="1" alt="" style="display:block">'
    return text, html


# --- clicks ---------------------------------------------------------------------------------------


def follow(*, session: UnitOfWork, secret: str | None, token: str, now: datetime) -> str:
    """The URL a click token stands for, read from the stored message's trackable links (never from
    the token or the request) and only when it is the URL the token was made for, the click
    recorded; 404 for a token we did not sign or a link the message does not track."""
    named = links.read_click_token(secret, token) if secret else None
    if named is None:
        raise NotFound("this link is not valid")
    notification_id, index, digest = named
    notification = session.scalars(
        sa.select(Notification).where(Notification.id == notification_id).with_for_update()
    ).first()
    if notification is None or notification.lead_id is None:
        raise NotFound("this link is not valid")
    as_written = (notification.context or {}).get(notifications.AS_WRITTEN)
    found = links.trackable(notification.body, notification.body_html, as_written)
    if index >= len(found) or not links.made_for(digest, found[index]):
        raise NotFound("this link is not valid")
    _record_click(session, notification, index, now)
    return found[index]


def _record_click(session: UnitOfWork, notification: Notification, index: int, now: datetime) -> None:
    """Every hit counted; the first one per message and link is the engagement (`link.clicked`).
    The message's row is locked first: two clicks at once take turns."""
    click = session.scalars(
        sa.select(MessageClick).where(
            MessageClick.notification_id == notification.id, MessageClick.link == index
        )
    ).first()
    if click is not None:
        click.clicks += 1
        click.last_clicked_at = now
        return
    session.add(
        MessageClick(
            clinic_id=notification.clinic_id,
            notification_id=notification.id,
            lead_id=notification.lead_id,
            link=index,
            clicks=1,
            first_clicked_at=now,
            last_clicked_at=now,
        )
    )
    _emit(session, notification, LinkClicked, {"link": index}, now)


# --- opens ----------------------------------------------------------------------------------------


def opened(
    *, session: UnitOfWork, notification: Notification, machine: bool, source: str, now: datetime
) -> bool:
    """Record an open of an email to a lead (its row locked by the caller); the first counted one
    emits `email.opened`. A machine's open is marked, and counted only where the clinic says so.
    Whether the event was emitted."""
    if notification.lead_id is None or notification.channel != Channel.EMAIL:
        return False
    row = session.get(MessageOpen, notification.id)
    if row is None:
        row = MessageOpen(
            notification_id=notification.id,
            clinic_id=notification.clinic_id,
            lead_id=notification.lead_id,
            opens=0,
            machine_opens=0,
            source=source,
        )
        session.add(row)
    if machine:
        row.machine_opens += 1
        row.first_machine_open_at = row.first_machine_open_at or now
        clinic = session.get(Clinic, notification.clinic_id)
        if not machine_opens_count(clinic.settings if clinic else None):
            return False
    else:
        row.opens += 1
    if row.first_opened_at is not None:
        return False
    row.first_opened_at = now
    _emit(session, notification, EmailOpened, {"machine": machine}, now)
    return True


def pixel_fetched(
    *, session: UnitOfWork, secret: str | None, token: str, user_agent: str | None, now: datetime
) -> None:
    """GET /o/<token>.gif: the open of the email the token names, where its clinic has the pixel on
    (a token of an email sent before it was turned off still counts: the email carries it)."""
    notification_id = links.read_open_token(secret, token) if secret else None
    if notification_id is None:
        return
    notification = session.scalars(
        sa.select(Notification).where(Notification.id == notification_id).with_for_update()
    ).first()
    if notification is None:
        return
    opened(
        session=session,
        notification=notification,
        machine=links.is_machine_agent(user_agent),
        source=PIXEL,
        now=now,
    )


def _emit(
    session: UnitOfWork, notification: Notification, event_type: type, extra: dict, now: datetime
) -> None:
    domain_events.emit(
        session=session,
        event=event_type(lead_id=notification.lead_id, notification_id=notification.id, **extra),
        subject=domain_events.Subject(notification.clinic_id, "lead", notification.lead_id),
        now=now,
    )
