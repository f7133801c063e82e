"""What the schedule changes: a consultation moved or cancelled, one booked for a family on a day.
Each goes through the lead page's own changes (lead_actions: the API's request schema and use case),
so nothing here books or moves by itself; what is added is the schedule's reading of the form (a date
and a time in the clinic's zone, a family chosen by search) and a refused time said as a sentence in
the clinic's time, beside the field it is about."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time

from app.console import wording
from app.console.workspace import lead_actions
from app.console.workspace import schedule_reads as reads
from app.domains.availability import service as availability
from app.domains.consultations import service as consultations
from app.domains.consultations.booking import search
from app.domains.consultations.booking.placement import SlotTaken
from app.domains.consultations.models import Consultation, ConsultationStatus
from app.domains.leads import listing as lead_listing
from app.domains.leads import service as leads
from app.platform.errors import InvalidTransition, ValidationFailed
from app.platform.roles import Actor

FOUND_SHOWN = 10  # families a search offers to choose from
LEAD_CLOSED = "lead_closed"


@dataclass(frozen=True)
class Edit:
    """Who changes what and when: the person, the form they posted (its fields as text), the moment."""

    actor: Actor
    posted: Mapping
    now: datetime


def card(*, session, actor: Actor, consultation_id: int) -> dict:
    """One consultation as the move and cancel pages show it; another clinic's is a 404."""
    visit = consultations.get_consultation(
        session=session, clinic_id=actor.clinic_id, consultation_id=consultation_id
    )
    zone = reads.clinic_zone(session, actor)
    shown = reads.row(visit, reads.lookup_for(session, actor, [visit], zone), actor)
    local = visit.starts_at.astimezone(zone)
    return {**shown, "date": local.date().isoformat(), "time": local.strftime("%H:%M")}


def _scheduled(visit: Consultation, verb: str) -> None:
    """Only a scheduled consultation moves or is cancelled: said before the use case says it in code."""
    if visit.status != ConsultationStatus.SCHEDULED:
        status = wording.consultation_status(visit.status)
        raise InvalidTransition(wording.NOT_SCHEDULED.format(status=status.lower(), verb=verb))


def _typed_moment(posted: Mapping, errors: dict) -> str | None:
    """The form's new date and time as the local "YYYY-MM-DDTHH:MM" an <input datetime-local> gives
    (what lead_actions reads), each part refused by its own field's name."""
    time_of_day = None
    day = reads.calendar_day(posted.get("date"))
    if day is None:
        errors["date"] = [wording.SCHEDULE_BAD_INPUT["date"]]
    try:
        time_of_day = time.fromisoformat((posted.get("time") or "").strip())
    except ValueError:
        errors["time"] = [wording.SCHEDULE_BAD_INPUT["time"]]
    if day is None or time_of_day is None:
        return None
    return datetime.combine(day, time_of_day.replace(second=0, microsecond=0)).isoformat(timespec="minutes")


@dataclass(frozen=True)
class Known:
    """What a refused time is said with, read before the change (after a refusal the unit of work
    holds the half-made change, and is only rolled back)."""

    zone: object
    providers: dict[int, str]


def _known(session, actor: Actor) -> Known:
    providers = availability.list_providers(session=session, clinic_id=actor.clinic_id)
    return Known(reads.clinic_zone(session, actor), {p.id: p.name for p in providers})


def _said_taken(known: Known, refused: SlotTaken, field: str) -> ValidationFailed:
    """The placement's slot_taken as a sentence in the clinic's time, on the form's field."""
    clash = refused.errors.get("clash")
    provider = known.providers.get(clash.get("provider_id")) if clash else None
    names = wording.Names(zone=known.zone)
    sentence = wording.slot_taken(clash, refused.errors.get("alternatives") or [], provider, names)
    return ValidationFailed({field: [sentence]})


def move(*, session, consultation_id: int, edit: Edit) -> Consultation:
    """Move a scheduled consultation to the date and time typed (the clinic's), as the lead page's
    reschedule does (`PUT /api/consultations/{id}`)."""
    actor = edit.actor
    visit = consultations.get_consultation(
        session=session, clinic_id=actor.clinic_id, consultation_id=consultation_id
    )
    _scheduled(visit, "moved")
    errors: dict = {}
    moment = _typed_moment(edit.posted, errors)
    if errors:
        raise ValidationFailed(errors)
    known = _known(session, actor)
    change = lead_actions.Change(actor=actor, posted={"starts_at": moment}, now=edit.now, zone=known.zone)
    try:
        return lead_actions.reschedule(
            session=session, lead_id=visit.lead_id, consultation_id=consultation_id, change=change
        )
    except SlotTaken as refused:
        raise _said_taken(known, refused, "time") from refused


def cancel(*, session, consultation_id: int, edit: Edit) -> Consultation:
    """Cancel a scheduled consultation (`POST /api/consultations/{id}/cancel`): its reminders end."""
    visit = consultations.get_consultation(
        session=session, clinic_id=edit.actor.clinic_id, consultation_id=consultation_id
    )
    _scheduled(visit, "cancelled")
    return consultations.cancel(
        session=session, actor=edit.actor, consultation_id=consultation_id, now=edit.now
    )


CHECK_IN, NO_SHOW = "check-in", "no-show"


def attendance(*, session, consultation_id: int, action: str, edit: Edit) -> Consultation:
    """The family came (checked in: not before the consultation starts) or did not (a no-show),
    through the lead page's own consultation actions (`POST /api/consultations/{id}/check-in`,
    `/no-show`)."""
    visit = consultations.get_consultation(
        session=session, clinic_id=edit.actor.clinic_id, consultation_id=consultation_id
    )
    change = lead_actions.Change(
        actor=edit.actor, posted={}, now=edit.now, zone=reads.clinic_zone(session, edit.actor)
    )
    run = lead_actions.check_in if action == CHECK_IN else lead_actions.no_show
    return run(session=session, lead_id=visit.lead_id, consultation_id=consultation_id, change=change)


# --- booking from the schedule ------------------------------------------------------------------


def booking_page(*, session, actor: Actor, args: Mapping, now: datetime) -> dict:
    """The schedule's "Book a consultation" for a day: find the family (the API's lead search), then
    the day's free times of a consultation type (the availability service), or a time typed."""
    zone = reads.clinic_zone(session, actor)
    day, problem = reads.day_of(args.get("day"), reads.local_today(now, zone))
    errors = {"day": [problem]} if problem else {}
    typed = (args.get("q") or "").strip()[:100]
    found = []
    if len(typed) >= 2:  # the API's search refuses less: too little to search
        rows = lead_listing.search_leads(session=session, actor=actor, q=typed, limit=FOUND_SHOWN, now=now)
        names = reads.family_names(session, actor, [lead.id for lead in rows])
        found = [{"id": lead.id, "name": names.get(lead.id, "")} for lead in rows]
    lead_id = reads.id_of(args.get("lead"))
    family = _family(session, actor, lead_id) if lead_id is not None else None
    types = availability.list_types(session=session, clinic_id=actor.clinic_id)
    asked_type = (args.get("type") or "").strip()
    type_id = next((t.id for t in types if str(t.id) == asked_type), types[0].id if types else None)
    return {
        "day": day,
        "day_label": day.strftime(reads.DAY_FORMAT),
        "errors": errors,
        "q": typed,
        "found": found,
        "searched": len(typed) >= 2,
        "family": family,
        "types": [(t.id, f"{t.name} ({t.duration_minutes} min)") for t in types],
        "type_id": type_id,
        "slots": _free_times(session, actor, type_id, day, now) if family and type_id else [],
        "zone": str(zone),
    }


def _family(session, actor: Actor, lead_id: int) -> dict:
    """The family chosen: the clinic's lead (another clinic's is a 404), by its name."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    return {"id": lead.id, "name": reads.family_names(session, actor, [lead.id]).get(lead.id, "")}


def _free_times(session, actor: Actor, type_id: int, day: date, now: datetime) -> list[dict]:
    """The type's free times on the day, as the lead page's booking offers them ("<start>|<provider>")."""
    query = search.SlotQuery(type_id, day, day)
    found = search.free_slots(session=session, clinic_id=actor.clinic_id, query=query, now=now)
    zone = reads.clinic_zone(session, actor)
    return [
        {
            "value": f"{slot.starts_at.isoformat()}|{slot.provider_ids[0] if slot.provider_ids else ''}",
            "label": slot.starts_at.astimezone(zone).strftime("%H:%M"),
        }
        for slot in found
    ]


def book(*, session, edit: Edit) -> Consultation:
    """Book for the family chosen on the day: a free time chosen, or the time typed that day, through
    the lead page's booking (`POST /api/leads/{id}/consultations`)."""
    posted, actor = edit.posted, edit.actor
    lead_id = reads.id_of(posted.get("lead"))
    if lead_id is None:
        raise ValidationFailed("lead", wording.SCHEDULE_BAD_INPUT["lead"])
    form = {k: (posted.get(k) or "").strip() for k in ("type_id", "slot", "location")}
    if not form["slot"]:  # no free time chosen: the time typed, on the day the page is for
        if not (posted.get("time") or "").strip():
            raise ValidationFailed("time", wording.SCHEDULE_BAD_INPUT["when"])
        errors: dict = {}
        form["starts_at"] = _typed_moment(posted, errors)
        if errors:
            raise ValidationFailed(errors)
    known = _known(session, actor)
    change = lead_actions.Change(actor=actor, posted=form, now=edit.now, zone=known.zone)
    try:
        return lead_actions.book(session=session, lead_id=lead_id, change=change)
    except SlotTaken as refused:
        raise _said_taken(known, refused, "slot" if form["slot"] else "time") from refused
    except InvalidTransition as refused:
        if refused.code == LEAD_CLOSED:
            raise InvalidTransition(wording.SCHEDULE_LEAD_CLOSED, code=LEAD_CLOSED) from refused
        raise


def done_sentence(key: str, session, actor: Actor, visit: Consultation) -> str:
    """What the schedule says after a change: whose consultation, when (the clinic's time)."""
    zone = reads.clinic_zone(session, actor)
    family = reads.family_names(session, actor, [visit.lead_id]).get(visit.lead_id)
    when = visit.starts_at.astimezone(zone).strftime(f"{reads.DAY_FORMAT}, %H:%M")
    return wording.SCHEDULE[key].format(family=family or wording.SCHEDULE["removed_family"], when=when)


def day_after(visit: Consultation, zone) -> date:
    """The local day a consultation is on (where the schedule goes back to after a change)."""
    return visit.starts_at.astimezone(zone).date()
