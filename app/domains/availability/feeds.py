"""Providers' busy times from their own calendars (CRM <- calendar): each private iCalendar feed is
read on a schedule, one ledger job per feed (taken in turns between clinics), its recurring events
and their exceptions expanded over the booking horizon, and only the busy times kept (never a
summary, a place or a guest). A feed that fails keeps its last good copy and tells the admins once
(until it reads again)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.availability.models import BusyBlock, ConsultationType, FeedStatus, Provider
from app.domains.availability.service import settings_of
from app.domains.outbound import service as notifications
from app.platform.db import UnitOfWork
from app.platform.delivery import addresses
from app.platform.scheduling import service as scheduling

log = logging.getLogger(__name__)

READ_FEED = "availability.read_feed"
SUBJECT = "provider"
TIMEOUT_SECONDS = 10
MAX_FEED_BYTES = 5 * 1024 * 1024  # a busy doctor's year of events is well under 1 MB
MAX_BLOCKS = 5000  # busy blocks kept per provider over the horizon


class FeedError(Exception):
    """The feed could not be read (the message says why, without its address)."""


# --- beat: a job per feed due ---------------------------------------------------------------------


def schedule_due(*, session: UnitOfWork, now: datetime, every: timedelta) -> int:
    """A read job for each active provider's feed not read within `every` (or never read)."""
    rows = session.execute(
        sa.select(Provider.id, Provider.clinic_id).where(
            Provider.feed_url.is_not(None),
            Provider.active,
            sa.or_(Provider.feed_checked_at.is_(None), Provider.feed_checked_at <= now - every),
        )
    ).all()
    bucket = int(now.timestamp() // max(every.total_seconds(), 1))
    for provider_id, clinic_id in rows:
        session.schedule(
            scheduling.Job(
                kind=READ_FEED,
                due_at=now,
                dedupe_key=f"feed:{provider_id}:{bucket}",  # once per interval, however many beats
                now=now,
                clinic_id=clinic_id,
                subject_type=SUBJECT,
                subject_id=provider_id,
                max_attempts=1,  # a failure is recorded and the next interval reads again
            )
        )
    return len(rows)


# --- the job: read, expand, keep the busy times ---------------------------------------------------


def read_feed(*, session: UnitOfWork, job, now: datetime) -> None:
    """Read one provider's feed and replace their busy blocks; a failure keeps the old ones."""
    provider = session.scalar(sa.select(Provider).where(Provider.id == job.subject_id).with_for_update())
    if provider is None or provider.feed_url is None:
        return
    clinic = session.get(Clinic, provider.clinic_id)
    until = now + timedelta(days=_horizon_days(session, provider.clinic_id))
    provider.feed_checked_at = now
    try:
        body = fetch(provider.feed_url, session.database.settings)
        blocks = busy_times(body, clinic.timezone, now, until)
    except FeedError as error:
        _failed(session, provider, str(error), now)
        return
    session.execute(sa.delete(BusyBlock).where(BusyBlock.provider_id == provider.id))
    for starts_at, ends_at in blocks[:MAX_BLOCKS]:
        session.add(BusyBlock(provider_id=provider.id, starts_at=starts_at, ends_at=ends_at))
    provider.feed_status, provider.feed_error, provider.feed_ok_at = FeedStatus.OK, None, now


def _horizon_days(session: UnitOfWork, clinic_id: int) -> int:
    longest = session.scalar(
        sa.select(sa.func.max(ConsultationType.horizon_days)).where(ConsultationType.clinic_id == clinic_id)
    )
    return max(settings_of(session, clinic_id).horizon_days, longest or 0)


def _failed(session: UnitOfWork, provider: Provider, reason: str, now: datetime) -> None:
    """Keep the last good copy; tell the clinic's admins when the feed starts failing."""
    newly = provider.feed_status != FeedStatus.FAILING
    provider.feed_status, provider.feed_error = FeedStatus.FAILING, reason[:300]
    if not newly:
        return
    notifications.notify_admins(
        session=session,
        clinic_id=provider.clinic_id,
        notice=notifications.StaffNotice(
            kind="escalation",
            title=f"The calendar feed of {provider.name} cannot be read",
            body=f"{reason[:300]}. Their last good copy still blocks their time; check the feed address.",
            link=f"/api/availability/providers/{provider.id}",
            dedupe_key=f"feed:{provider.id}:failing:{now.isoformat()}",
        ),
        now=now,
    )


def fetch(url: str, settings) -> bytes:
    """The feed's body, through the address guard (a public address, each redirect checked, a
    deadline, a size cap, a 2xx); FeedError otherwise, with the guard's one text whatever the cause
    (never naming the URL, which is a secret; the cause goes to the log)."""
    try:
        return addresses.fetch(
            url,
            deadline=TIMEOUT_SECONDS,
            allow_private=settings.webhook_allow_private_addresses,
            max_bytes=MAX_FEED_BYTES,
        ).body
    except addresses.Unreachable as error:
        log.info("a calendar feed could not be read: %s", error.detail)
        raise FeedError(f"the feed {error}") from None


def busy_times(
    body: bytes, timezone: str, since: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """The busy [start, end) times (UTC) of the feed's events overlapping [since, until), recurring
    ones expanded with their exceptions (moved or cancelled occurrences); free (TRANSPARENT) and
    cancelled events block nothing. All-day and floating times are the clinic's local ones."""
    try:
        calendar = icalendar.Calendar.from_ical(body)
        events = recurring_ical_events.of(calendar).between(since, until)
    except Exception as error:  # the feed's content, not our state: any parse failure is the feed's
        raise FeedError(f"the feed is not a readable iCalendar ({type(error).__name__})") from None
    zone = ZoneInfo(timezone)
    blocks = []
    for event in events:
        if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start = _instant(event.get("DTSTART").dt, zone)
        end = _end_of(event, start, zone)
        if end > start:
            blocks.append((start, end))
    return sorted(blocks)


def _instant(value, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), zone).astimezone(UTC)
    raise FeedError("an event has no readable start")


def _end_of(event, start: datetime, zone: ZoneInfo) -> datetime:
    if event.get("DTEND") is not None:
        return _instant(event.get("DTEND").dt, zone)
    if event.get("DURATION") is not None:
        return start + event.get("DURATION").dt
    # No end: an all-day event lasts its day, a timed one is a moment (RFC 5545 3.6.1).
    return start + timedelta(days=1) if not isinstance(event.get("DTSTART").dt, datetime) else start
