"""What the booking page's templates show, read from the request and the services: the day asked,
the slots in the family's timezone, the form's checks (honeypot, render stamp), the security policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.domains.auth.models import Clinic
from app.domains.booking_page import links
from app.domains.booking_page import service as booking
from app.platform.db import MAX_ID
from app.platform.errors import DomainError, NotFound, ValidationFailed

HONEYPOT = "website"  # hidden from people; a bot filling every field fills it


# A refusal in the staff's words that the family should read in theirs (and without the lead's id).
FAMILY_WORDS = {"lead_closed": "Online booking is not open for you at the moment: please call the clinic."}


def refusal(error: DomainError) -> str:
    if error.code in FAMILY_WORDS:
        return FAMILY_WORDS[error.code]
    field_errors = error.errors.get("json", {}) if isinstance(error, ValidationFailed) else {}
    if not isinstance(field_errors, dict) or not field_errors:
        return error.message
    return "; ".join(
        f"{_label(k)}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in field_errors.items()
    )


def _label(name: str) -> str:
    return {"form": "This form", "first_name": "First name", "last_name": "Last name"}.get(
        name, name.replace("_", " ").capitalize()
    )


@dataclass
class PageView:
    clinic: Clinic
    zone: ZoneInfo
    action: str
    ask_name: bool
    types: list = field(default_factory=list)
    type_id: int | None = None
    day: date | None = None
    slots: list = field(default_factory=list)  # (UTC ISO start, "10:00 AM")
    taken: list = field(default_factory=list)  # the nearest free, when the chosen one went
    message: str | None = None
    typed: dict = field(default_factory=dict)
    form_token: str = ""

    @property
    def day_label(self) -> str:
        return self.day.strftime("%A %-d %B %Y")

    @property
    def previous_day(self) -> date:
        return self.day - timedelta(days=1)

    @property
    def next_day(self) -> date:
        return self.day + timedelta(days=1)


def id_param(raw: str) -> int:
    """A record's id as a form or query string names it: digits from 1 to MAX_ID, else no such record
    (a 404, never a number the database cannot hold)."""
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID):
        raise NotFound("no such consultation type")
    return int(raw)


def chosen_type(raw: str | None, types: list) -> int | None:
    ids = [t.id for t in types]
    wanted = id_param(raw) if raw else None
    return wanted if wanted in ids else (ids[0] if ids else None)


# The days a page may show, around today: past them nothing is bookable (the longest horizon is a year).
FARTHEST = timedelta(days=400)


def day_of(raw: str | None, default: datetime, zone: ZoneInfo) -> date:
    """The day asked (?day=), else the default's; one outside the bookable years is the default's."""
    fallback = default.astimezone(zone).date()
    try:
        asked = date.fromisoformat(raw) if raw else fallback
    except ValueError:
        return fallback
    return asked if abs(asked - fallback) <= FARTHEST else fallback


def when(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local.strftime('%A %-d %B %Y, %-I:%M %p')} ({zone.key})"


def _label_of(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%-I:%M %p")


def fill_slots(
    view: PageView, uow, now: datetime, provider_id: int | None = None, *, look_ahead: bool = False
) -> None:
    """The day's free times; `look_ahead` (no day asked): the first day with some, when that has none."""
    if view.type_id is None:
        return
    asked = booking.DayAsked(view.type_id, view.day, view.zone, provider_id)
    if look_ahead:
        view.day, found = booking.first_free_day(uow, view.clinic, asked, now)
    else:
        found = booking.day_slots(uow, view.clinic, asked, now)
    view.slots = [(s.starts_at.isoformat(), _label_of(s.starts_at, view.zone)) for s in found]


def alternatives(taken, zone: ZoneInfo) -> list:
    starts = [datetime.fromisoformat(a["starts_at"]) for a in taken.errors.get("alternatives", [])]
    return [(s.isoformat(), when(s, zone)) for s in starts]


def choice_of(form, secret: str, clinic_id: int, zone: ZoneInfo, now: datetime, *, for_change: bool = False):
    """The family's choice, after the bot checks: the honeypot empty, the render stamp ours and of
    a person's pace."""
    if form.get(HONEYPOT):
        raise ValidationFailed("form", "refused: a field meant to stay empty was filled in")
    stamp = links.checked_form(secret, form.get("form_token", ""), clinic_id, now)
    if for_change and form.get("do") == "cancel":
        return None
    if not form.get("type"):
        raise ValidationFailed("type", "choose a consultation type")
    type_id = id_param(form["type"])
    try:
        starts_at = datetime.fromisoformat(form.get("starts_at") or "")
    except ValueError:
        raise ValidationFailed("starts_at", "choose a time") from None
    if starts_at.tzinfo is None or abs(starts_at - now) > FARTHEST:
        raise ValidationFailed("starts_at", "choose a time")
    family = None if for_change else {k: form.get(k) for k in ("first_name", "last_name", "phone", "email")}
    return booking.Choice(type_id, starts_at, zone, family, stamp.submission_id)
