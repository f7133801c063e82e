"""Pure rules of notifications: staff channels per kind, quiet hours, retry backoff, digest time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

IN_APP, EMAIL, SMS = "in_app", "email", "sms"
STAFF_KINDS = ("reminder", "overdue", "overdue_digest", "escalation", "new_lead", "new_task", "digest")
# In-app is always stored (it is silent). What the spec promises "in-app and email" — reminders,
# overdue notices and the hourly overdue digest, escalations (seeds 000/001) — also goes by email
# unless the user turns it off in their preferences; the rest only when asked for; the digest is an
# email by nature.
DEFAULT_CHANNELS = {
    "reminder": [IN_APP, EMAIL],
    "overdue": [IN_APP, EMAIL],
    "escalation": [IN_APP, EMAIL],
    "new_lead": [IN_APP],
    "new_task": [IN_APP],
    "digest": [EMAIL],
    "overdue_digest": [IN_APP, EMAIL],
}
ALLOWED_CHANNELS = dict.fromkeys(STAFF_KINDS, (IN_APP, EMAIL, SMS)) | {"digest": (EMAIL,)}
# The analytics summary email (app/analytics/summary.py) goes to clinic admins only, each choosing
# how often; daily by default, as the spec's "daily summary reports" at 8 AM.
SUMMARY_FREQUENCIES = ("daily", "weekly", "off")
DEFAULT_SUMMARY_FREQUENCY = "daily"


def channels_for(kind: str, chosen: dict | None) -> list[str]:
    """The channels a staff member gets `kind` on: their choice, else the default; in-app always."""
    picked = (chosen or {}).get(kind)
    channels = list(DEFAULT_CHANNELS.get(kind, [IN_APP]) if picked is None else picked)
    if kind != "digest" and IN_APP not in channels:
        channels.insert(0, IN_APP)
    return channels


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, tz: str, start: str | None, end: str | None) -> datetime | None:
    """If `now` falls in the local quiet hours [start, end) — which may span midnight — their end (aware).

    None when there are no quiet hours or `now` is outside them. start == end means no quiet hours.
    """
    if not start or not end or start == end:
        return None
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    begin, finish = parse_hhmm(start), parse_hhmm(end)
    clock = local.time().replace(tzinfo=None)
    if begin < finish:
        inside = begin <= clock < finish
        end_day = local.date()
    else:  # e.g. 21:00 → 07:00
        inside = clock >= begin or clock < finish
        end_day = local.date() + timedelta(days=1) if clock >= begin else local.date()
    if not inside:
        return None
    # Wall-clock end in the zone (a DST gap resolves forward through zoneinfo's fold handling).
    return datetime.combine(end_day, finish, tzinfo=zone)


def retry_delay(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds before attempt `attempt + 1`: base * 2**(attempt-1), capped, times 0.5 + `jitter` (0..1).

    The jitter spreads a burst of failures (a provider outage) so the retries do not arrive in lockstep.
    """
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * (0.5 + jitter)


def digest_due(now: datetime, tz: str, *, hour: int, window_hours: int) -> date | None:
    """The local date whose digest is due at `now` (local time in [hour, hour + window)), else None."""
    local = now.astimezone(ZoneInfo(tz))
    if hour <= local.hour < hour + window_hours:
        return local.date()
    return None


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, as aware datetimes."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
