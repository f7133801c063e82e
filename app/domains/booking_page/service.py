"""The family's booking page: whose page it is (a clinic's public key, a lead's signed link), the
free slots of a day in the family's timezone, the booking itself (book_by_family; a family not yet
known first becomes a lead through the web form's capture), and the confirmation's changes within
the clinic's cut-off. The page shows nothing of the lead: nothing here returns the lead's fields."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.availability import rules as slot_rules
from app.domains.availability import service as availability
from app.domains.availability.models import ConsultationType
from app.domains.booking_page import links
from app.domains.booking_page.models import DEFAULT_CUTOFF_HOURS, BookingPageSettings, SpentFormStamp
from app.domains.consultations import service as consultations
from app.domains.consultations.booking import search
from app.domains.consultations.booking.by_family import FAMILY, book_by_family
from app.domains.consultations.booking.placement import ALTERNATIVES, SlotTaken
from app.domains.consultations.models import BookedVia, Consultation, ConsultationStatus
from app.domains.intake import service as intake
from app.domains.lead_messages import booking_link
from app.domains.lead_messages.models import BookingLinkEvent
from app.domains.leads import service as leads
from app.platform.db import UnitOfWork, insert_once
from app.platform.errors import NotFound, TooManyRequests, ValidationFailed
from app.platform.roles import Actor

SETTING_FIELDS = ("embed_origins", "change_cutoff_hours")


# --- settings -------------------------------------------------------------------------------------


def settings_of(session: UnitOfWork, clinic_id: int, now: datetime) -> BookingPageSettings:
    """The clinic's page settings, made (with a fresh public key) the first time they are asked."""
    row = session.get(BookingPageSettings, clinic_id)
    if row is not None:
        return row
    try:
        with session.begin_nested():  # two first reads at once: the second reads the first's row
            return session.add(
                BookingPageSettings(
                    clinic_id=clinic_id,
                    public_key=secrets.token_urlsafe(18),
                    embed_origins=[],
                    change_cutoff_hours=DEFAULT_CUTOFF_HOURS,
                    updated_at=now,
                )
            )
    except sa.exc.IntegrityError:
        return session.get(BookingPageSettings, clinic_id, populate_existing=True)


def settings_answer(session: UnitOfWork, clinic_id: int, now: datetime, public_base_url: str) -> dict:
    """The clinic's booking page settings, its page's address under `public_base_url` (the app's)."""
    row = settings_of(session, clinic_id, now)
    base = public_base_url.rstrip("/")
    return {
        "page_url": f"{base}/book/{row.public_key}",
        "embed_origins": list(row.embed_origins),
        "change_cutoff_hours": row.change_cutoff_hours,
    }


def update_settings(
    *, session: UnitOfWork, clinic_id: int, changes: dict, now: datetime
) -> BookingPageSettings:
    row = settings_of(session, clinic_id, now)
    for name in SETTING_FIELDS:
        if name in changes:
            setattr(row, name, changes[name])
    row.updated_at = now
    session.flush()
    return row


def frame_ancestors(session: UnitOfWork, clinic_id: int) -> list[str]:
    """The origins that may embed the clinic's page (none: the page is never framed)."""
    row = session.get(BookingPageSettings, clinic_id)
    return list(row.embed_origins) if row is not None else []


# --- whose page -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visitor:
    """Who is on the page: the clinic, and the lead when they came by their own link."""

    clinic: Clinic
    lead_id: int | None = None


def by_key(session: UnitOfWork, public_key: str) -> Visitor:
    row = session.scalar(sa.select(BookingPageSettings).where(BookingPageSettings.public_key == public_key))
    if row is None:
        raise NotFound("this booking page does not exist")
    return Visitor(session.get(Clinic, row.clinic_id))


def by_link(session: UnitOfWork, secret: str, token: str, now: datetime) -> Visitor:
    clinic_id, lead_id = booking_link.lead_of(secret, token, now)
    leads.get_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)  # erased or deleted: a 404
    return Visitor(session.get(Clinic, clinic_id), lead_id)


def family_zone(clinic: Clinic, wanted: str | None) -> ZoneInfo:
    """The browser's timezone when it is a real one, else the clinic's."""
    try:
        return ZoneInfo(wanted) if wanted else ZoneInfo(clinic.timezone)
    except (ValueError, KeyError, OSError):
        return ZoneInfo(clinic.timezone)


# --- slots ----------------------------------------------------------------------------------------


def bookable_types(session: UnitOfWork, clinic_id: int) -> list[ConsultationType]:
    return [
        k
        for k in availability.list_types(session=session, clinic_id=clinic_id)
        if k.active and k.provider_ids
    ]


# What a clinic lacks for its booking page to offer any time (booking_gaps).
NO_PROVIDER, NO_TYPE = "provider", "consultation_type"


def booking_gaps(session: UnitOfWork, clinic_id: int) -> list[str]:
    """Why a family's booking link would offer no time at all: no active provider, or no active
    consultation type with an active provider; empty when the page can offer times."""
    active = {p.id for p in availability.list_providers(session=session, clinic_id=clinic_id) if p.active}
    if not active:
        return [NO_PROVIDER] + ([] if _a_type(session, clinic_id) else [NO_TYPE])
    served = [k for k in bookable_types(session, clinic_id) if active.intersection(k.provider_ids)]
    return [] if served else [NO_TYPE]


def _a_type(session: UnitOfWork, clinic_id: int) -> bool:
    return any(k.active for k in availability.list_types(session=session, clinic_id=clinic_id))


@dataclass(frozen=True)
class DayAsked:
    """One day of a type's slots as the family sees it (their zone), optionally of one provider."""

    type_id: int
    day: date
    zone: ZoneInfo
    provider_id: int | None = None


def day_slots(session: UnitOfWork, clinic: Clinic, asked: DayAsked, now: datetime) -> list[slot_rules.Slot]:
    """The free slots starting on the family's local day: the clinic's days around it, filtered."""
    query = search.SlotQuery(
        asked.type_id, asked.day - timedelta(days=1), asked.day + timedelta(days=1), asked.provider_id
    )
    found = search.free_slots(session=session, clinic_id=clinic.id, query=query, now=now)
    return [s for s in found if s.starts_at.astimezone(asked.zone).date() == asked.day]


# How far ahead a page opened without a day looks for the first day with free times.
LOOK_AHEAD_DAYS = 14


def first_free_day(
    session: UnitOfWork, clinic: Clinic, asked: DayAsked, now: datetime
) -> tuple[date, list[slot_rules.Slot]]:
    """The asked day and its free slots; when it has none (opened late in the evening, or on a closed
    day), the first of the next two weeks that has (the asked day with none when no day has)."""
    today = day_slots(session, clinic, asked, now)
    if today:
        return asked.day, today
    query = search.SlotQuery(
        asked.type_id, asked.day, asked.day + timedelta(days=LOOK_AHEAD_DAYS), asked.provider_id
    )
    found = search.free_slots(session=session, clinic_id=clinic.id, query=query, now=now)
    later = [s for s in found if s.starts_at.astimezone(asked.zone).date() > asked.day]
    if not later:
        return asked.day, []
    first = min(s.starts_at for s in later).astimezone(asked.zone).date()
    return first, [s for s in later if s.starts_at.astimezone(asked.zone).date() == first]


class TimeNotOffered(ValidationFailed):
    """A start the page never offered (outside the hours, past, between two slots): not a race, so
    not "just taken"."""

    def __init__(self):
        super().__init__("starts_at", "That time is not available: choose one of the times shown.")
        self.message = "That time is not available: choose one of the times shown."


def _offered(
    session: UnitOfWork, clinic: Clinic, asked: DayAsked, starts_at: datetime, now: datetime
) -> slot_rules.Slot:
    """The free slot starting at `starts_at`. A start the page would never offer (3 a.m. posted by
    hand, yesterday) is TimeNotOffered; one it offers but is no longer free was taken meanwhile: a
    SlotTaken with the nearest free ones."""
    for slot in day_slots(session, clinic, asked, now):
        if slot.starts_at == starts_at:
            return slot
    query = search.SlotQuery(
        asked.type_id, asked.day - timedelta(days=1), asked.day + timedelta(days=1), asked.provider_id
    )
    if not any(
        s.starts_at == starts_at
        for s in search.free_slots(session=session, clinic_id=clinic.id, query=query, now=now, booked=False)
    ):
        raise TimeNotOffered()
    first = starts_at.astimezone(asked.zone).date()
    query = search.SlotQuery(
        asked.type_id,
        max(first - timedelta(days=7), now.date()),
        first + timedelta(days=7),
        asked.provider_id,
    )
    near = slot_rules.nearest(
        search.free_slots(session=session, clinic_id=clinic.id, query=query, now=now), starts_at, ALTERNATIVES
    )
    raise SlotTaken(
        "that time is no longer free",
        errors={"alternatives": [{"starts_at": s.starts_at.isoformat()} for s in near]},
    )


# --- booking --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """What the family sent: the type, the start, and (a family not yet known) who they are."""

    type_id: int
    starts_at: datetime
    zone: ZoneInfo
    family: dict | None = None  # first_name, last_name, phone, email
    submission_id: str | None = None  # the form's one-off id: sent twice, one lead


def book(
    session: UnitOfWork, visitor: Visitor, choice: Choice, now: datetime, *, per_hour: int
) -> Consultation:
    """Book the chosen slot for the link's lead, or for the family who typed their details (a lead
    through the web form's capture, duplicates and all). A slot gone is a SlotTaken with the nearest.
    Through a lead's link that holds an upcoming visit already, the visit moves to the slot (a link
    holds one). `per_hour`: the clinic's page takes at most that many bookings and moves an hour.
    In a savepoint: a refusal (the page shows it, the request's unit commits) leaves nothing written,
    the form's stamp unspent."""
    with session.begin_nested():
        return _book(session, visitor, choice, now, per_hour)


def _book(session: UnitOfWork, visitor: Visitor, choice: Choice, now: datetime, per_hour: int):
    clinic = visitor.clinic
    asked = DayAsked(choice.type_id, choice.starts_at.astimezone(choice.zone).date(), choice.zone)
    availability.get_type(session=session, clinic_id=clinic.id, type_id=choice.type_id)  # another's: 404
    _within_hourly_limit(session, clinic.id, per_hour, now)
    upcoming = _upcoming_of(session, visitor, now)
    if upcoming is not None:
        found = _changeable(session, clinic.id, upcoming.id, now)
        return _move(session, found, choice, now, same_provider=False)
    _offered(session, clinic, asked, choice.starts_at, now)
    family = _family(choice.family or {}) if visitor.lead_id is None else {}
    _spend(session, clinic.id, choice.submission_id, now)
    lead_id = visitor.lead_id
    if lead_id is None:
        form = {
            **family,
            "submission_id": choice.submission_id,
            "source": "Booking page",
        }
        lead_id = intake.capture_web_form(session=session, clinic_id=clinic.id, form=form, now=now).lead.id
    booking = consultations.Booking(
        starts_at=choice.starts_at, type_id=choice.type_id, booked_via=BookedVia.SELF
    )
    consultation = book_by_family(
        session=session, clinic_id=clinic.id, lead_id=lead_id, booking=booking, now=now
    )
    if visitor.lead_id is not None:  # through the lead's own link: the link's conversion
        booking_link.record(session, consultation, BookingLinkEvent.BOOKED, now)
    return consultation


def _upcoming_of(session: UnitOfWork, visitor: Visitor, now: datetime) -> Consultation | None:
    """The link's lead's next scheduled visit, if it has one still ahead."""
    if visitor.lead_id is None:
        return None
    return session.scalar(
        sa.select(Consultation)
        .where(
            Consultation.clinic_id == visitor.clinic.id,
            Consultation.lead_id == visitor.lead_id,
            Consultation.status == ConsultationStatus.SCHEDULED,
            Consultation.starts_at > now,
        )
        .order_by(Consultation.starts_at)
        .limit(1)
    )


def _within_hourly_limit(session: UnitOfWork, clinic_id: int, per_hour: int, now: datetime) -> None:
    """Refuse past `per_hour` bookings and moves on the clinic's page in the last hour (0: no limit),
    counted on the form stamps they spent: a script on many addresses cannot fill the calendar."""
    if per_hour <= 0:
        return
    spent = session.scalar(
        sa.select(sa.func.count()).where(
            SpentFormStamp.clinic_id == clinic_id, SpentFormStamp.spent_at > now - timedelta(hours=1)
        )
    )
    if spent >= per_hour:
        raise TooManyRequests("The clinic is taking many online bookings right now: please call the clinic.")


def _spend(session: UnitOfWork, clinic_id: int, submission_id: str | None, now: datetime) -> None:
    """Spend the form's stamp, in the booking's transaction (a refused booking keeps it for a second
    try): posted again, the same form is refused. Stamps past their lifetime go as new ones come."""
    if submission_id is None:
        return
    session.execute(
        sa.delete(SpentFormStamp).where(
            SpentFormStamp.clinic_id == clinic_id, SpentFormStamp.spent_at < now - links.FORM_LIFETIME
        )
    )
    row = SpentFormStamp(submission_id=submission_id, clinic_id=clinic_id, spent_at=now)
    if insert_once(session, row, unique="submission_id") is None:
        raise ValidationFailed("form", "this form was sent already: reload the page to book again")


def _family(typed: dict) -> dict:
    """The short form's fields, checked: both names, and a phone or an email."""
    family = {k: (typed.get(k) or "").strip() for k in ("first_name", "last_name", "phone", "email")}
    for name in ("first_name", "last_name"):
        if not family[name]:
            raise ValidationFailed(name, "required")
        if len(family[name]) > 100:
            raise ValidationFailed(name, "at most 100 characters")
    if not family["phone"] and not family["email"]:
        raise ValidationFailed("phone", "a phone number or an email address, so the clinic can confirm")
    if len(family["phone"]) > 40 or len(family["email"]) > 254:
        raise ValidationFailed("phone" if len(family["phone"]) > 40 else "email", "too long")
    return {k: v for k, v in family.items() if v}


# --- the confirmation's changes -------------------------------------------------------------------


@dataclass(frozen=True)
class Booked:
    """A consultation seen through its confirmation's link, and whether the family may still change it."""

    consultation: Consultation
    clinic: Clinic
    kind: ConsultationType | None
    changeable: bool


def booked(session: UnitOfWork, clinic_id: int, consultation_id: int, now: datetime) -> Booked:
    consultation = consultations.get_consultation(
        session=session, clinic_id=clinic_id, consultation_id=consultation_id
    )
    cutoff = timedelta(hours=settings_of(session, clinic_id, now).change_cutoff_hours)
    changeable = (
        consultation.status == ConsultationStatus.SCHEDULED and consultation.starts_at - now >= cutoff
    )
    kind = session.get(ConsultationType, consultation.type_id) if consultation.type_id else None
    return Booked(consultation, session.get(Clinic, clinic_id), kind, changeable)


def _changeable(session: UnitOfWork, clinic_id: int, consultation_id: int, now: datetime) -> Booked:
    found = booked(session, clinic_id, consultation_id, now)
    if not found.changeable:
        raise ValidationFailed(
            "consultation", "too close to the visit to change it here: please call the clinic"
        )
    return found


def reschedule(
    session: UnitOfWork, clinic_id: int, consultation_id: int, choice: Choice, now: datetime
) -> Consultation:
    """Move the family's consultation (its confirmation's link) to another free start of its type
    with the same provider; in a savepoint, as `book`."""
    with session.begin_nested():
        found = _changeable(session, clinic_id, consultation_id, now)
        return _move(session, found, choice, now, same_provider=True)


def _move(session: UnitOfWork, found: Booked, choice: Choice, now: datetime, *, same_provider: bool):
    """Move a changeable visit to the chosen free start of its type (`same_provider`: with its
    provider only; else with another of the type's when its own is busy then), spending the form."""
    if found.kind is None:
        raise ValidationFailed("consultation", "this visit cannot be moved here: please call the clinic")
    consultation = found.consultation
    asked = DayAsked(
        found.kind.id,
        choice.starts_at.astimezone(choice.zone).date(),
        choice.zone,
        consultation.provider_id if same_provider else None,
    )
    slot = _offered(session, found.clinic, asked, choice.starts_at, now)
    _spend(session, found.clinic.id, choice.submission_id, now)
    changes = {"starts_at": choice.starts_at}
    if consultation.provider_id not in slot.provider_ids:
        changes["provider_id"] = slot.provider_ids[0]
    return consultations.reschedule(
        session=session,
        actor=Actor.engine(found.clinic.id, FAMILY),
        consultation_id=consultation.id,
        changes=changes,
        now=now,
    )


def cancel(session: UnitOfWork, clinic_id: int, consultation_id: int, now: datetime) -> Consultation:
    _changeable(session, clinic_id, consultation_id, now)
    actor = Actor.engine(clinic_id, FAMILY)
    return consultations.cancel(session=session, actor=actor, consultation_id=consultation_id, now=now)
