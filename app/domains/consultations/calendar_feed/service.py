"""Calendar feeds: rotate a user's secret token; render the user's open tasks and the scheduled
consultations of the leads they own as iCalendar."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from icalendar import Calendar, Event

from app.domains.auth.models import User
from app.domains.consultations import listing as consultations
from app.domains.consultations.calendar_feed.models import CalendarFeed
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound, ValidationFailed
from app.platform.roles import Actor

EVENT_MINUTES = 15
MAX_TOKEN_LENGTH = 100


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def rotate_token(*, session: UnitOfWork, actor: Actor, now: datetime) -> dict:
    """A new secret token for the caller's feed; the old URL stops working at once."""
    if actor.user_id is None:
        raise ValidationFailed("Authorization", "an API key has no calendar: sign in as a user")
    token = secrets.token_urlsafe(32)
    feed = session.get(CalendarFeed, actor.user_id)
    if feed is None:
        feed = CalendarFeed(user_id=actor.user_id, clinic_id=actor.clinic_id)
        session.add(feed)
    feed.token_hash, feed.created_at = _digest(token), now
    return {"token": token, "url": f"/api/calendar/{token}.ics", "created_at": now}


def feed_for_token(*, session: UnitOfWork, token: str, now: datetime) -> bytes:
    """The iCalendar document of the open tasks of the token's user; an unknown token is not found."""
    feed = None
    if 0 < len(token) <= MAX_TOKEN_LENGTH:
        feed = session.scalar(sa.select(CalendarFeed).where(CalendarFeed.token_hash == _digest(token)))
    user = session.get(User, feed.user_id) if feed else None
    if user is None or not user.active:
        raise NotFound("no such calendar")
    tasks = session.scalars(
        sa.select(LeadTask)
        .where(
            LeadTask.clinic_id == user.clinic_id,
            LeadTask.assigned_to_id == user.id,
            LeadTask.status.in_(OPEN_TASK_STATUSES),
        )
        .order_by(LeadTask.due_at, LeadTask.id)
    )
    cal = Calendar()
    cal.add("prodid", "-//Follow-up Engine//tasks//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "Follow-up tasks")
    for task in tasks:
        event = Event()
        event.add("uid", f"task-{task.id}@followup-engine")
        # Titles only: the feed may sit in a third-party calendar, so no lead names (PHI) in it.
        event.add("summary", f"{task.title} (lead #{task.lead_id})")
        event.add("dtstart", task.due_at)
        event.add("dtend", task.due_at + timedelta(minutes=EVENT_MINUTES))
        event.add("dtstamp", now)
        event.add("status", "CONFIRMED")
        event.add("categories", [task.type, task.priority])
        event.add("url", f"/api/leads/tasks/{task.id}")
        cal.add_component(event)
    for consultation in consultations.scheduled_of_owner(
        session=session, clinic_id=user.clinic_id, user_id=user.id
    ):
        event = Event()
        event.add("uid", f"consultation-{consultation.id}@followup-engine")
        event.add("sequence", consultation.version)  # a new time replaces the old one in the calendar
        event.add("summary", f"Consultation (lead #{consultation.lead_id})")  # no names: see above
        event.add("dtstart", consultation.starts_at)
        event.add("dtend", consultation.starts_at + timedelta(minutes=consultation.duration_minutes))
        event.add("dtstamp", now)
        event.add("status", "CONFIRMED")
        event.add("categories", ["CONSULTATION"])
        if consultation.location:
            event.add("location", consultation.location)
        event.add("url", f"/api/consultations/{consultation.id}")
        cal.add_component(event)
    return cal.to_ical()
