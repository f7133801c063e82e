"""Telling a staff member something: in-app always, email/SMS copies by their preferences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.auth.models import User
from app.notifications import inbox, outgoing, preferences, rules
from app.notifications.models import Notification


def notify_staff(
    *,
    session: Session,
    clinic_id: int,
    user_id: int | None,
    kind: str,
    title: str,
    body: str,
    link: str | None,
    dedupe_key: str,
    now: datetime,
    origin: dict | None = None,
    known_new: bool = False,
) -> Notification | None:
    """Tell a staff member by their preferences: in-app always (silent, at once); email/SMS copies on the
    channels they chose for `kind`, deferred to the end of their quiet hours. Returns the in-app row."""
    in_app = inbox.notify_in_app(
        session=session,
        clinic_id=clinic_id,
        user_id=user_id,
        kind=kind,
        title=title,
        body=body,
        link=link,
        dedupe_key=dedupe_key,
        now=now,
        origin=origin,
        known_new=known_new,
    )
    if user_id is None:
        return in_app
    copies = [c for c in preferences.channels_of(session, user_id, kind) if c in (rules.EMAIL, rules.SMS)]
    if not copies:
        return in_app
    user = session.get(User, user_id)
    prefs = preferences.preferences_of(session, user_id)
    not_before = preferences.after_quiet_hours(session, user_id, prefs, now)
    context = {"title": title, "body": body, "link": link, "user_name": user.name, "origin": origin}
    for channel in copies:
        address = user.email if channel == rules.EMAIL else (prefs.sms_number if prefs else None)
        if not address:
            continue
        send = outgoing.send_email if channel == rules.EMAIL else outgoing.send_sms
        send(
            session=session,
            clinic_id=clinic_id,
            to_address=address,
            template="staff_alert",
            context=context,
            dedupe_key=f"{dedupe_key}:{channel}",
            now=now,
            kind=kind,
            recipient_user_id=user_id,
            not_before=not_before,
        )
    return in_app
