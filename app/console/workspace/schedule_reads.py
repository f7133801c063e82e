"""What the schedule (/console/schedule) shows: the clinic's consultations of a local day, or of the
week around it, for every provider or one, read by the consultations' own listing in the clinic's
timezone; each with its family (as the API shows the lead to this reader), type, provider and status
in words, and whether this reader may move or cancel it (the API's permission for those changes).
The query string is the page's whole state (day, view, provider, cancelled), so prev/next, the week
switch and the provider filter are plain links and a GET form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.console import wording
from app.domains.auth import service as auth
from app.domains.availability import service as availability
from app.domains.consultations import listing
from app.domains.consultations.models import Consultation, ConsultationStatus
from app.domains.leads import lookups
from app.domains.leads import schemas as lead_schemas
from app.platform import phi_policy
from app.platform.db import MAX_ID
from app.platform.roles import Actor, Permission

DAY, WEEK = "day", "week"
WEEK_DAYS = 7
DAY_FORMAT = "%A %-d %B %Y"  # "Monday 7 January 2030"
# Who may change a consultation: the API's reschedule and cancel ask lead:create (the front desk
# books, so it moves and cancels too), and so does the schedule.
CHANGE = Permission.CREATE


@dataclass(frozen=True)
class Asked:
    """What the schedule was opened with (the query string, checked)."""

    day: date
    view: str = DAY
    provider_id: int | None = None
    show_cancelled: bool = False

    def query(self, **changed) -> dict:
        """The query string of this view with some of it changed (prev/next, the switches)."""
        state = {
            "day": self.day.isoformat(),
            "view": self.view,
            "provider": self.provider_id,
            "cancelled": 1 if self.show_cancelled else None,
        }
        state.update(changed)
        return {key: value for key, value in state.items() if value not in (None, "")}


def clinic_zone(session, actor: Actor) -> ZoneInfo:
    return ZoneInfo(auth.get_clinic(session=session, clinic_id=actor.clinic_id).timezone)


def local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


# The days a schedule may show or a consultation be put on: a typo's year 9999 would overflow the
# week's end or the visit's, and no clinic looks further back or ahead.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)


def calendar_day(text: str | None) -> date | None:
    """A typed day (YYYY-MM-DD) within the years a schedule covers, or None."""
    try:
        day = date.fromisoformat((text or "").strip())
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def day_of(text: str | None, today: date) -> tuple[date, str | None]:
    """A typed day (YYYY-MM-DD) and the problem with it, if any: a bad one falls back to today."""
    if not text:
        return today, None
    day = calendar_day(text)
    if day is None:
        return today, wording.SCHEDULE_BAD_INPUT["day"].format(typed=text[:40])
    return day, None


def id_of(text: str | None) -> int | None:
    """A typed id (the query string's provider or lead), or None for anything else."""
    text = (text or "").strip()
    return int(text) if text.isdigit() and int(text) <= MAX_ID else None


def asked_of(args: Mapping, today: date, provider_ids: set[int]) -> tuple[Asked, dict[str, list[str]]]:
    """The schedule's query string as an `Asked`, and what was wrong with it by field (each wrong
    part falls back to its default, so the page still shows something useful)."""
    errors: dict[str, list[str]] = {}
    day, problem = day_of(args.get("day"), today)
    if problem:
        errors["day"] = [problem]
    provider = (args.get("provider") or "").strip()
    provider_id = id_of(provider) if id_of(provider) in provider_ids else None
    if provider and provider_id is None:
        errors["provider"] = [wording.SCHEDULE_BAD_INPUT["provider"]]
    view = WEEK if args.get("view") == WEEK else DAY
    return Asked(day, view, provider_id, args.get("cancelled") == "1"), errors


def days_shown(asked: Asked) -> list[date]:
    """The local days on the page: the day, or its week from Monday."""
    if asked.view == DAY:
        return [asked.day]
    monday = asked.day - timedelta(days=asked.day.weekday())
    return [monday + timedelta(days=offset) for offset in range(WEEK_DAYS)]


def family_names(session, actor: Actor, lead_ids: list[int]) -> dict[int, str]:
    """The families' names as the API shows the leads to `actor`, by lead id, read at once."""
    found = lookups.live_leads_by_id(session=session, clinic_id=actor.clinic_id, lead_ids=lead_ids)
    schema = lead_schemas.LeadOut(only=("first_name", "last_name"))
    with phi_policy.reading_as(actor):
        shown = {lead_id: schema.dump(lead) for lead_id, lead in found.items()}
    return {lead_id: f"{s['first_name']} {s['last_name']}".strip() for lead_id, s in shown.items()}


@dataclass(frozen=True)
class Lookup:
    """The names a consultation's row shows: families, providers and types, by id, and the zone."""

    families: dict[int, str]
    providers: dict[int, str]
    types: dict[int, str]
    zone: ZoneInfo


def lookup_for(session, actor: Actor, visits: list[Consultation], zone: ZoneInfo) -> Lookup:
    cid = actor.clinic_id
    return Lookup(
        families=family_names(session, actor, sorted({visit.lead_id for visit in visits})),
        providers={p.id: p.name for p in availability.list_providers(session=session, clinic_id=cid)},
        types={t.id: t.name for t in availability.list_types(session=session, clinic_id=cid)},
        zone=zone,
    )


def row(visit: Consultation, lookup: Lookup, actor: Actor, now: datetime | None = None) -> dict:
    """One consultation as the schedule lists it; with `now`, whether it may be checked in (once it
    has started: the consultations' check-in refuses before) or marked a no-show."""
    starts = visit.starts_at.astimezone(lookup.zone)
    ends = starts + timedelta(minutes=visit.duration_minutes)
    return {
        "id": visit.id,
        "lead_id": visit.lead_id,
        "family": lookup.families.get(visit.lead_id) or wording.SCHEDULE["removed_family"],
        "on_file": visit.lead_id in lookup.families,
        "day": starts.date(),
        "starts": starts.strftime("%H:%M"),
        "ends": ends.strftime("%H:%M"),
        "when": starts.strftime(f"{DAY_FORMAT}, %H:%M %Z"),
        "type": lookup.types.get(visit.type_id) or wording.SCHEDULE["no_type"],
        "provider": lookup.providers.get(visit.provider_id)
        or visit.provider_name
        or wording.SCHEDULE["no_provider"],
        "location": visit.location or "",
        "status": visit.status,
        "status_words": wording.consultation_status(visit.status),
        "may_change": visit.status == ConsultationStatus.SCHEDULED and actor.can(CHANGE),
        "may_check_in": now is not None
        and actor.can(CHANGE)
        and visit.status in (ConsultationStatus.SCHEDULED, ConsultationStatus.NO_SHOW)
        and visit.starts_at <= now,
        "may_mark_no_show": now is not None
        and visit.status == ConsultationStatus.SCHEDULED
        and actor.can(CHANGE),
    }


def _empty_sentence(day: date, provider: str | None) -> str:
    said = day.strftime(DAY_FORMAT)
    if provider:
        return wording.SCHEDULE["empty_day_provider"].format(provider=provider, day=said)
    return wording.SCHEDULE["empty_day"].format(day=said)


def _day_block(day: date, rows: list[dict], asked: Asked, provider: str | None) -> dict:
    shown = [r for r in rows if asked.show_cancelled or r["status"] != ConsultationStatus.CANCELLED]
    hidden = len(rows) - len(shown)
    noun = "consultation" if hidden == 1 else "consultations"
    return {
        "date": day,
        "iso": day.isoformat(),
        "label": day.strftime(DAY_FORMAT),
        "rows": shown,
        "empty": None if shown else _empty_sentence(day, provider),
        "cancelled_hidden": wording.SCHEDULE["cancelled_hidden"].format(count=hidden, noun=noun)
        if hidden
        else None,
    }


def schedule(*, session, actor: Actor, args: Mapping, now: datetime) -> dict:
    """Everything the schedule shows `actor` for the query string `args`."""
    zone = clinic_zone(session, actor)
    today = local_today(now, zone)
    providers = availability.list_providers(session=session, clinic_id=actor.clinic_id)
    asked, errors = asked_of(args, today, {p.id for p in providers})
    days = days_shown(asked)
    span = listing.LocalDays(days[0], days[-1], asked.provider_id)
    visits = listing.of_days(session=session, clinic_id=actor.clinic_id, days=span)
    lookup = lookup_for(session, actor, visits, zone)
    rows = [row(visit, lookup, actor, now) for visit in visits]
    provider = lookup.providers.get(asked.provider_id) if asked.provider_id else None
    step = timedelta(days=WEEK_DAYS if asked.view == WEEK else 1)
    return {
        "asked": asked,
        "errors": errors,
        "today": today,
        "zone": str(zone),
        "days": [_day_block(day, [r for r in rows if r["day"] == day], asked, provider) for day in days],
        "providers": [(p.id, p.name) for p in providers],
        "provider": provider,
        "prev": asked.query(day=(asked.day - step).isoformat()),
        "next": asked.query(day=(asked.day + step).isoformat()),
        "this_day": asked.query(day=today.isoformat()),
        "switch": asked.query(view=DAY if asked.view == WEEK else WEEK),
        "toggle_cancelled": asked.query(cancelled=None if asked.show_cancelled else 1),
        "may_book": actor.can(CHANGE),
        "title": _title(days, asked),
    }


def _title(days: list[date], asked: Asked) -> str:
    if asked.view == DAY:
        return days[0].strftime(DAY_FORMAT)
    return f"Week of {days[0].strftime(DAY_FORMAT)}"
