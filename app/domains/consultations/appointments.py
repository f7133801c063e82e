"""A booking or practice-management system's appointment events (the signed webhook): applied once,
in the booking system's order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from app.domains.auth.models import Clinic
from app.domains.consultations import rules
from app.domains.consultations.booking import placement
from app.domains.consultations.models import BookedVia, Consultation, ConsultationStatus
from app.domains.consultations.service import (
    DEFAULT_DURATION,
    Booking,
    apply_changes,
    attend,
    audit_change,
    book,
    by_external_id,
    end,
    insert,
    miss,
)
from app.domains.intake.inbound import messages as inbound
from app.domains.leads import service as leads
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound, ValidationFailed
from app.platform.roles import Actor

if TYPE_CHECKING:
    from app.domains.leads.models import Lead


@dataclass(frozen=True)
class Appointment:
    """One appointment event from a booking or practice-management system: its id (`external_id`),
    what it says now (`status`), when that happened there (`occurred_at`: the order events apply
    in), and whose it is (`lead_id`, or the lead's phone or email) with its time and place."""

    external_id: str
    status: str
    occurred_at: datetime
    booking: Booking | None = None
    lead_id: int | None = None
    contact: tuple[str, str] | None = None  # ("sms", phone) or ("email", address)


@dataclass(frozen=True)
class Applied:
    consultation: Consultation
    created: bool
    applied: bool  # False: a replay, or an event older than one already applied


def capture_appointment(
    *, session: UnitOfWork, clinic_id: int, appointment: Appointment, now: datetime
) -> Applied:
    """Apply a booking system's appointment event, once, in the booking system's order: a replay or
    an older event arriving late changes nothing; an event for an appointment not yet known (its
    booking not arrived) creates it in the state the event says."""
    actor = Actor.engine(clinic_id, "booking_system")
    target = rules.WEBHOOK_STATUSES[appointment.status]
    consultation = by_external_id(session, clinic_id, appointment.external_id)
    if consultation is None:
        return Applied(_first_event(session, actor, appointment, target, now), created=True, applied=True)
    if rules.is_stale(consultation.source_updated_at, appointment.occurred_at):
        return Applied(consultation, created=False, applied=False)
    consultation.source_updated_at = appointment.occurred_at
    _follow(session, consultation, appointment, target, actor, now)
    return Applied(consultation, created=False, applied=True)


def _first_event(
    session: UnitOfWork, actor: Actor, appointment: Appointment, target: str, now: datetime
) -> Consultation:
    if appointment.booking is None:
        raise ValidationFailed("starts_at", "required for an appointment not seen before")
    lead = _lead_of(session, actor.clinic_id, appointment)
    booking = Booking(
        **{
            **appointment.booking.__dict__,
            "external_id": appointment.external_id,
        }
    )
    if target == ConsultationStatus.SCHEDULED:
        consultation = book(session=session, actor=actor, lead_id=lead.id, booking=booking, now=now)
    else:  # its booking not arrived yet: never confirmed nor reminded, straight to what it became
        consultation = insert(session, lead, booking, actor, now)
        audit_change(session, consultation, actor, "consultation.book", now)
        _follow(session, consultation, appointment, target, actor, now)
    consultation.source_updated_at = appointment.occurred_at
    return consultation


def _follow(
    session: UnitOfWork,
    consultation: Consultation,
    appointment: Appointment,
    target: str,
    actor: Actor,
    now: datetime,
) -> None:
    """Bring the consultation to what the booking system says now."""
    current = consultation.status
    if target == ConsultationStatus.SCHEDULED and current == ConsultationStatus.SCHEDULED:
        booking = appointment.booking
        if booking is not None:
            changes = {"starts_at": booking.starts_at, "duration_minutes": booking.duration_minutes}
            changes.update(location=booking.location, provider_name=booking.provider_name)
            provider = placement.provider_of(
                session, consultation.clinic_id, booking.provider_id, booking.provider_name
            )
            changes["provider_id"] = provider.id if provider is not None else None
            apply_changes(session, consultation, changes, actor, now)
    elif target == ConsultationStatus.CANCELLED and current == ConsultationStatus.SCHEDULED:
        end(session, consultation, actor, now)
    elif target == ConsultationStatus.ATTENDED and current in (
        ConsultationStatus.SCHEDULED,
        ConsultationStatus.NO_SHOW,
    ):
        attend(session, consultation, actor, min(appointment.occurred_at, now), now)
    elif target == ConsultationStatus.NO_SHOW and current == ConsultationStatus.SCHEDULED:
        miss(session, consultation, actor, now)
    # Anything else (a booking for a cancelled or attended appointment): the booking system rebooks
    # with a new appointment id; a closed consultation is not reopened.


def _lead_of(session: UnitOfWork, clinic_id: int, appointment: Appointment) -> Lead:
    if appointment.lead_id is not None:
        return leads.get_lead(session=session, clinic_id=clinic_id, lead_id=appointment.lead_id)
    if appointment.contact is not None:
        channel, address = appointment.contact
        lead = inbound.match_lead(
            session=session, clinic=session.get(Clinic, clinic_id), channel=channel, sender=address
        )
        if lead is not None:
            return lead
    raise NotFound("no open lead of this clinic matches the appointment's lead_id, phone or email")


def appointment_of(body: dict) -> Appointment:
    """The webhook's parsed body as an Appointment."""
    booking = None
    if body.get("starts_at") is not None:
        booking = Booking(
            starts_at=body["starts_at"],
            duration_minutes=body.get("duration_minutes") or DEFAULT_DURATION,
            location=body.get("location"),
            provider_name=body.get("provider_name"),
            provider_id=body.get("provider_id"),
            booked_via=BookedVia.WEBHOOK,
        )
    contact = (
        ("sms", body["phone"])
        if body.get("phone")
        else ("email", body["email"])
        if body.get("email")
        else None
    )
    return Appointment(
        external_id=body["external_id"],
        status=body["status"],
        occurred_at=body["occurred_at"],
        booking=booking,
        lead_id=body.get("lead_id"),
        contact=contact,
    )
