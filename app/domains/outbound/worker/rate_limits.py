"""A clinic's provider rate limit per channel: a send over it waits for the next window, in the ledger.

The clinic's setting `provider_rate_limits` maps a channel to a limit in the notation of the
`limits` library, the one flask-limiter reads for the API's own limits: {"sms": "200/hour",
"email": "1000 per 10 minutes"}. The library parses and validates the notation and gives the
window's length; the counting is not the library's: its strategies keep their windows in Redis,
timed by the wall clock, while a held-back message must wait durably and in step with the `now`
its worker passes in. So each (clinic, channel) has one row here, a fixed window that opens at its
first send (as the library's fixed window opens at its first hit): a send takes a slot with one
compare-and-set UPDATE, in the transaction that claims the message, so two workers can never both
take the last slot and a claim that rolls back gives its slot back. A message that finds the window
full is not sent and not dropped: it goes back to `pending` with a delivery job due when the
window ends (attempts.claim_delivery), its attempt not counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from limits import RateLimitItem
from sqlalchemy.exc import IntegrityError

from app.domains.auth.models import Clinic
from app.domains.outbound.models import Channel, ProviderSendWindow
from app.platform.db import UnitOfWork
from app.platform.delivery.rules import parse_limit

SETTING = "provider_rate_limits"
LIMITED_CHANNELS = (Channel.EMAIL.value, Channel.SMS.value, Channel.INSTAGRAM.value, Channel.WHATSAPP.value)
# Meta's Instagram API takes 200 messages an hour from one account (a clinic has one): the limit
# even when the clinic sets none; a clinic may set a lower one.
DEFAULT_LIMITS = {Channel.INSTAGRAM.value: "200/hour"}


def limit_of(settings: dict | None, channel: str) -> RateLimitItem | None:
    """The clinic's limit on `channel`, or None (no limit; in-app and console are never limited)."""
    text = ((settings or {}).get(SETTING) or {}).get(channel) or DEFAULT_LIMITS.get(channel)
    if text is None or channel not in LIMITED_CHANNELS:
        return None
    return parse_limit(text)


def held_until(
    session: UnitOfWork, *, clinic_id: int, channel: str, now: datetime, cache: dict | None = None
) -> tuple[datetime, str] | None:
    """Take a slot for one send now; None when taken (or there is no limit), else (when the window
    ends, why). `cache` keeps each clinic's settings across one batch."""
    if channel not in LIMITED_CHANNELS:
        return None
    if cache is not None and clinic_id in cache:
        settings = cache[clinic_id]
    else:
        settings = session.scalar(sa.select(Clinic.settings).where(Clinic.id == clinic_id))
        if cache is not None:
            cache[clinic_id] = settings
    limit = limit_of(settings, channel)
    if limit is None:
        return None
    period = timedelta(seconds=limit.get_expiry())
    window_start = _take_slot(session, clinic_id, channel, limit.amount, period, now)
    if window_start is None:
        return None
    return window_start + period, f"held back by the clinic's {channel} rate limit ({limit})"


def _take_slot(
    session: UnitOfWork, clinic_id: int, channel: str, amount: int, period: timedelta, now: datetime
) -> datetime | None:
    """None when a slot was taken; else the start of the full window."""
    window = ProviderSendWindow
    over = window.window_start <= now - period  # the window has ended: this send opens a new one
    taken = session.execute(
        sa.update(window)
        .where(window.clinic_id == clinic_id, window.channel == channel, sa.or_(over, window.sent < amount))
        .values(
            window_start=sa.case((over, now), else_=window.window_start),
            sent=sa.case((over, 1), else_=window.sent + 1),
        )
        .returning(window.window_start)
        .execution_options(synchronize_session=False)
    ).first()
    if taken is not None:
        return None
    start = session.scalar(
        sa.select(window.window_start).where(window.clinic_id == clinic_id, window.channel == channel)
    )
    if start is not None:
        return start
    try:
        with session.begin_nested():  # the clinic's first send on the channel opens its window
            session.add(ProviderSendWindow(clinic_id=clinic_id, channel=channel, window_start=now, sent=1))
        return None
    except IntegrityError:  # a concurrent first send opened it: take a slot in it like any other
        return _take_slot(session, clinic_id, channel, amount, period, now)
