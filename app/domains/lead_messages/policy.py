"""The contact policy for automated messages to a lead. Pure logic: no I/O, no clock.

Every automated email or SMS asks `decide` first. The checks run in a fixed order, and the first
that holds back the message names why, so the why-trail can always say what the policy did:
do-not-contact, the channel's opt-out, a missing address, quiet hours (move to their end), then
the outreach limits on automated messages to one lead (seed 004): the clinic's cap in all (skip:
the lead has had enough), the per-lead daily cap (skip), and the minimum interval since the last
one (move to when it has passed). Quiet hours come before the caps on purpose: a message moved to
the morning is counted against the morning's day, when it is actually sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.domains.auth.instagram.service import AUTOMATED_WINDOW, HUMAN_AGENT_WINDOW
from app.domains.business_hours.rules import parse_hhmm, quiet_until
from app.platform.delivery.rules import PACING, QUIET_HOURS

EMAIL, SMS, INSTAGRAM, WHATSAPP = "email", "sms", "instagram", "whatsapp"
CHANNELS = (EMAIL, SMS, INSTAGRAM, WHATSAPP)
ADDRESS_NAMES = {
    EMAIL: "email address",
    SMS: "phone number",
    INSTAGRAM: "Instagram conversation",
    WHATSAPP: "phone number for WhatsApp",
}
DEFAULT_QUIET_HOURS = {"start": "20:00", "end": "08:00"}
DEFAULT_DAILY_CAP = 2

SEND, SKIP, MOVE = "send", "skip", "move"
DO_NOT_CONTACT = "do not contact"  # the reason a lead marked do-not-contact is skipped

# Who a message goes as: automation (its limits, Meta's 24-hour window); the follow-up pass, released
# on the clinic's behalf under Meta's human-agent policy (automation's limits, a person's 7-day
# window); a person (no automated limits, the 7-day window).
AUTOMATED, HUMAN_AGENT, BY_HAND = "automated", "human_agent", "by_hand"


@dataclass(frozen=True)
class Decision:
    """What to do with one message: send it, skip it (`reason`), or move it to `to` (`reason`;
    `held_by`: quiet_hours or pacing, as the message's answers name it)."""

    verdict: str
    reason: str | None = None
    to: datetime | None = None
    held_by: str | None = None


@dataclass(frozen=True)
class QuietHours:
    start: str
    end: str


@dataclass(frozen=True)
class MessageFacts:
    """What the policy weighs for one `channel` message due `at`: the lead's consent and address,
    its timezone and the clinic's quiet hours, and the limits on automated messages with the lead's
    counts (`sent_today` on the lead's local day; `sent_total`, `last_sent_at`: its automated
    messages so far; `last_touch_at`: its last touch by anyone). A cap or interval of None: no limit
    (a message a person sends is not an automated one)."""

    channel: str
    do_not_contact: bool
    opted_out: bool
    has_address: bool
    at: datetime
    timezone: str
    quiet_hours: QuietHours | None
    daily_cap: int | None
    sent_today: int
    total_cap: int | None = None
    sent_total: int = 0
    min_interval: timedelta | None = None
    last_sent_at: datetime | None = None
    touch_gap: timedelta | None = None
    last_touch_at: datetime | None = None
    # A channel with a messaging window (Instagram): how long after the family's last message
    # (`window_opened_at`) a message may go; None: the channel has none.
    window: timedelta | None = None
    window_opened_at: datetime | None = None


def instagram_window(sent_as: str) -> timedelta:
    """How long after the family's last message Meta lets a message `sent_as` go on Instagram."""
    return AUTOMATED_WINDOW if sent_as == AUTOMATED else HUMAN_AGENT_WINDOW


def window_reason(window: timedelta, opened_at: datetime | None, at: datetime) -> str | None:
    """Why a message at `at` is outside Instagram's window, or None when it is inside."""
    if opened_at is not None and at < opened_at + window:
        return None
    name = "24-hour messaging window" if window <= AUTOMATED_WINDOW else "7-day human agent window"
    if opened_at is None:
        return f"outside Instagram's {name}: the family has not written on Instagram"
    return f"outside Instagram's {name}: the family last wrote on Instagram at {opened_at.isoformat()}"


def opted_out_reason(channel: str) -> str:
    return f"the lead opted out of {channel}"


def no_address_reason(channel: str) -> str:
    return f"the lead has no {ADDRESS_NAMES.get(channel, 'address')}"


def channel_refusals(channel: str) -> tuple[str, str]:
    """Why a message cannot go by `channel` while the other channel may still reach the lead (a
    step's fallback channel is then tried): opted out of this one only, or no address for it."""
    return opted_out_reason(channel), no_address_reason(channel)


def decide(facts: MessageFacts) -> Decision:
    """The policy's answer for the message `facts` describe."""
    channel, at, timezone, quiet_hours = facts.channel, facts.at, facts.timezone, facts.quiet_hours
    if facts.do_not_contact:
        return Decision(SKIP, DO_NOT_CONTACT)
    if facts.opted_out:
        return Decision(SKIP, opted_out_reason(channel))
    if not facts.has_address:
        return Decision(SKIP, no_address_reason(channel))
    if facts.window is not None:
        closed = window_reason(facts.window, facts.window_opened_at, at)
        if closed is not None:
            return Decision(SKIP, closed)
    if quiet_hours is not None:
        until = quiet_until(at, timezone, quiet_hours.start, quiet_hours.end)
        if until is not None:
            why = f"quiet hours {quiet_hours.start}-{quiet_hours.end} ({timezone})"
            return Decision(MOVE, why, until, QUIET_HOURS)
    if facts.total_cap is not None and facts.sent_total >= facts.total_cap:
        return Decision(SKIP, f"the clinic's limit of {facts.total_cap} automated messages per lead reached")
    if facts.daily_cap is not None and facts.sent_today >= facts.daily_cap:
        return Decision(SKIP, f"daily cap of {facts.daily_cap} reached")
    interval, last_sent_at = facts.min_interval, facts.last_sent_at
    if interval and last_sent_at is not None and at < last_sent_at + interval:
        why = f"at most one automated message every {interval.total_seconds() / 60:g} minutes"
        return Decision(MOVE, why, last_sent_at + interval, PACING)
    until = gap_until(at, facts.touch_gap, facts.last_touch_at)
    if until is not None:
        return Decision(MOVE, gap_reason(facts.touch_gap), until, PACING)
    return Decision(SEND)


def gap_until(at: datetime, touch_gap: timedelta | None, last_touch_at: datetime | None) -> datetime | None:
    """When the clinic's minimum gap since the lead's last touch (any, a person's included) ends,
    if `at` is inside it; else None."""
    if not touch_gap or last_touch_at is None or at >= last_touch_at + touch_gap:
        return None
    return last_touch_at + touch_gap


def gap_reason(touch_gap: timedelta) -> str:
    return f"the clinic keeps {touch_gap.total_seconds() / 60:g} minutes between two touches of a lead"


def touch_gap_of(settings: dict | None) -> timedelta | None:
    """`min_touch_gap_minutes`: the least time between any two touches of a lead, manual ones included."""
    value = (settings or {}).get("min_touch_gap_minutes")
    return timedelta(minutes=value) if value else None


def is_quiet(at: datetime, timezone: str, quiet_hours: QuietHours | None) -> bool:
    """Whether `at` falls inside the quiet hours (in `timezone`)."""
    if quiet_hours is None:
        return False
    return quiet_until(at, timezone, quiet_hours.start, quiet_hours.end) is not None


def local_day(at: datetime, timezone: str) -> date:
    return at.astimezone(ZoneInfo(timezone)).date()


# --- reading the settings -------------------------------------------------------------------------


def valid_timezone(name: str | None) -> bool:
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory such as "America"
        return False
    return True


def timezone_for(lead_timezone: str | None, clinic_timezone: str) -> str:
    """Quiet hours are the lead's: its own timezone when it has a valid one, else the clinic's."""
    return lead_timezone if valid_timezone(lead_timezone) else clinic_timezone


def quiet_hours_of(settings: dict | None) -> QuietHours | None:
    """The clinic's `quiet_hours` ({"start": "20:00", "end": "08:00"} unless set; null turns them off)."""
    settings = settings or {}
    value = settings.get("quiet_hours", DEFAULT_QUIET_HOURS)
    if not value or not value.get("start") or not value.get("end") or value["start"] == value["end"]:
        return None
    return QuietHours(value["start"], value["end"])


def daily_cap_of(settings: dict | None) -> int:
    value = (settings or {}).get("daily_message_cap")
    return DEFAULT_DAILY_CAP if value is None else int(value)


def total_cap_of(settings: dict | None) -> int | None:
    """`max_automated_messages_per_lead`: automated messages one lead may get in all (None: no cap)."""
    value = (settings or {}).get("max_automated_messages_per_lead")
    return None if value is None else int(value)


def min_interval_of(settings: dict | None) -> timedelta | None:
    """`min_message_interval_minutes`: the least time between two automated messages to a lead."""
    value = (settings or {}).get("min_message_interval_minutes")
    return timedelta(minutes=value) if value else None


def hhmm_error(value) -> str | None:
    """Why `value` is not an "HH:MM" time of day, or None."""
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        return "give a time of day as HH:MM"
    try:
        parse_hhmm(value)
    except ValueError:
        return "give a time of day as HH:MM (00:00 to 23:59)"
    return None
