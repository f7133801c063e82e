"""Consultations: booked, moved, cancelled, checked in, or caught as no-shows on their own.

Every change is one transaction that writes the consultation, its event and its ledger jobs:
- `consultation.scheduled` (booked, or moved: `rescheduled`) carries the start; the clinic's rules
  (app/domains/automation/defaults.py) send the confirmation at once and the reminders counted back
  from the start, as automation steps on the ledger;
- a no-show check (`consultation.no_show_check`) is on the ledger for the start plus the clinic's
  grace: no check-in by then marks the consultation `no_show`, logs CONSULTATION_NO_SHOW on the
  timeline, and the playbook's urgent call task follows (the default rule on that activity);
- a reschedule, cancel, check-in or no-show ends the pending steps of the consultation's earlier
  events (`end_earlier_steps`, an event consumer that runs before the rules): reminders of an old
  time never go, and the new time's do, each once through the ledger.
The lead moves to consultation_scheduled when a consultation is booked and to
consultation_completed when one is attended, once each, and never backwards. A lead moved to
consultation_completed by hand, its visit checked in nowhere, attended as of the move
(attendance.py): the follow-up 3 days later does not depend on a recorded check-in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityType
from app.domains.auth.models import Clinic
from app.domains.consultations import events as visit_events
from app.domains.consultations import rules, timers
from app.domains.consultations.booking import placement
from app.domains.consultations.models import BookedVia, Consultation, ConsultationStatus
from app.domains.leads import service as leads
from app.domains.leads.models import Lead
from app.domains.pipeline import service as pipeline
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from app.platform.events import service as events
from app.platform.roles import Actor
from app.platform.scheduling import service as scheduling

NO_SHOW_CHECK = "consultation.no_show_check"
BOOKED_STAGE, ATTENDED_STAGE = "consultation_scheduled", "consultation_completed"
SUBJECT = "consultation"
CHECKED_IN_AT = "checked_in_at"  # the field a check-in before the start is refused on
ENGINE = "consultations"
DEFAULT_DURATION = 60


@dataclass(frozen=True)
class Booking:
    """A consultation's time and place as a person or a booking system gives it."""

    starts_at: datetime
    duration_minutes: int | None = None  # None: the type's length, else DEFAULT_DURATION
    location: str | None = None
    provider_name: str | None = None
    external_id: str | None = None
    booked_via: str = BookedVia.STAFF  # who booked it: the reports compare the ways
    # The provider or chair and the consultation type (app/domains/availability): a booking naming
    # either holds the provider's time, and a clash is refused (booking/placement.py).
    provider_id: int | None = None
    type_id: int | None = None
    buffer_minutes: int = 0  # filled in by the placement: the type's or the clinic's buffer


# --- reading --------------------------------------------------------------------------------------


def get_consultation(
    *, session: UnitOfWork, clinic_id: int, consultation_id: int, for_update: bool = False
) -> Consultation:
    """The clinic's consultation; another clinic's is not found."""
    stmt = sa.select(Consultation).where(
        Consultation.id == consultation_id, Consultation.clinic_id == clinic_id
    )
    consultation = session.scalar(stmt.with_for_update() if for_update else stmt)
    if consultation is None:
        raise NotFound(f"consultation {consultation_id} not found")
    return consultation


# --- booking and its changes ----------------------------------------------------------------------


def _check(booking: Booking) -> None:
    if not rules.MIN_DURATION <= booking.duration_minutes <= rules.MAX_DURATION:
        raise ValidationFailed(
            "duration_minutes", f"from {rules.MIN_DURATION} to {rules.MAX_DURATION} minutes"
        )


def book(*, session: UnitOfWork, actor: Actor, lead_id: int, booking: Booking, now: datetime) -> Consultation:
    """Book a consultation for an open lead: its confirmation, reminders and no-show check follow."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    consultation = insert(session, lead, booking, actor, now)
    audit_change(session, consultation, actor, "consultation.book", now)
    _scheduled(session, consultation, now, rescheduled=False)
    _advance(session, lead, BOOKED_STAGE, now)
    return consultation


def insert(session: UnitOfWork, lead: Lead, booking: Booking, actor: Actor, now: datetime) -> Consultation:
    """The consultation's row, scheduled, for an open lead (nothing planned for it yet)."""
    if not lead.is_open:
        raise InvalidTransition(f"lead {lead.id} is closed: reopen it before booking", code="lead_closed")
    booking = placement.resolve(session, lead.clinic_id, booking, booking.starts_at)
    booking = dataclasses.replace(booking, duration_minutes=booking.duration_minutes or DEFAULT_DURATION)
    _check(booking)
    if booking.external_id is not None and by_external_id(session, lead.clinic_id, booking.external_id):
        raise Conflict(f"a consultation with external_id {booking.external_id!r} exists")
    consultation = Consultation(
        clinic_id=lead.clinic_id,
        lead_id=lead.id,
        status=ConsultationStatus.SCHEDULED,
        starts_at=booking.starts_at,
        duration_minutes=booking.duration_minutes,
        location=booking.location,
        provider_name=booking.provider_name,
        external_id=booking.external_id,
        booked_via=BookedVia(booking.booked_via).value,
        provider_id=booking.provider_id,
        type_id=booking.type_id,
        overlap_allowed=False,
        version=1,
        created_by=actor.ref,
        created_at=now,
        updated_at=now,
    )
    placement.place(consultation, booking.buffer_minutes)
    return placement.hold(
        session, consultation, practice_system=booking.booked_via == BookedVia.WEBHOOK, now=now
    )


def reschedule(
    *, session: UnitOfWork, actor: Actor, consultation_id: int, changes: dict, now: datetime
) -> Consultation:
    """Change a scheduled consultation: a new start replaces every pending reminder and the no-show
    check of the old time (a new confirmation goes); place, provider or length alone move nothing."""
    consultation = get_consultation(
        session=session, clinic_id=actor.clinic_id, consultation_id=consultation_id, for_update=True
    )
    _ensure_status(consultation, ConsultationStatus.SCHEDULED, "rescheduled")
    apply_changes(session, consultation, changes, actor, now)
    return consultation


def apply_changes(
    session: UnitOfWork, consultation: Consultation, changes: dict, actor: Actor, now: datetime
) -> None:
    for name in ("location", "provider_name", "duration_minutes"):
        if name in changes and (name != "duration_minutes" or changes[name] is not None):
            setattr(consultation, name, changes[name])
    _check(Booking(consultation.starts_at, consultation.duration_minutes))
    consultation.updated_at = now
    starts_at = changes.get("starts_at")
    moved = starts_at is not None and starts_at != consultation.starts_at
    if moved:
        consultation.starts_at = starts_at
    if changes.get("provider_id") is not None:  # a practice system moved it to another provider
        consultation.provider_id = changes["provider_id"]
    # The provider's time held moves with the start and the length; a clash refuses the change.
    placement.place(consultation, placement.buffer_for(session, consultation))
    practice_system = actor.ref == placement.PRACTICE_SYSTEM
    placement.hold(session, consultation, practice_system=practice_system, now=now)
    if not moved:
        return
    consultation.version = consultation.version + 1
    consultation.confirmed_at = consultation.reschedule_requested_at = None  # a new time, a new answer
    _cancel_check(session, consultation, now)
    audit_change(session, consultation, actor, "consultation.reschedule", now)
    _scheduled(session, consultation, now, rescheduled=True)


def cancel(*, session: UnitOfWork, actor: Actor, consultation_id: int, now: datetime) -> Consultation:
    """Cancel a scheduled consultation: its pending reminders and no-show check end."""
    consultation = get_consultation(
        session=session, clinic_id=actor.clinic_id, consultation_id=consultation_id, for_update=True
    )
    _ensure_status(consultation, ConsultationStatus.SCHEDULED, "cancelled")
    end(session, consultation, actor, now)
    return consultation


def end(session: UnitOfWork, consultation: Consultation, actor: Actor, now: datetime) -> None:
    consultation.status, consultation.cancelled_at, consultation.updated_at = (
        ConsultationStatus.CANCELLED,
        now,
        now,
    )
    _cancel_check(session, consultation, now)
    audit_change(session, consultation, actor, "consultation.cancel", now)
    _emit(session, consultation, visit_events.ConsultationCancelled, now)


def check_in(
    *, session: UnitOfWork, actor: Actor, consultation_id: int, now: datetime, at: datetime | None = None
) -> Consultation:
    """The family arrived: attended (also after it was marked a no-show: then the no-show's call task
    is cancelled if still open), never as of a time before the consultation starts. The
    post-consultation follow-up counts from this check-in."""
    consultation = get_consultation(
        session=session, clinic_id=actor.clinic_id, consultation_id=consultation_id, for_update=True
    )
    if consultation.status not in (ConsultationStatus.SCHEDULED, ConsultationStatus.NO_SHOW):
        raise InvalidTransition(f"a consultation {consultation.status} cannot be checked in")
    at = min(at or now, now)
    if at < consultation.starts_at:  # a visit is not attended before it starts (the seed's rule)
        raise ValidationFailed(
            CHECKED_IN_AT,
            f"the consultation starts at {consultation.starts_at.isoformat()}: "
            "it cannot be checked in before it starts",
        )
    attend(session, consultation, actor, at, now)
    return consultation


def attend(
    session: UnitOfWork, consultation: Consultation, actor: Actor, at: datetime, now: datetime
) -> None:
    late = consultation.status == ConsultationStatus.NO_SHOW
    consultation.status, consultation.checked_in_at = ConsultationStatus.ATTENDED, at
    consultation.updated_at = now
    _cancel_check(session, consultation, now)
    audit_change(session, consultation, actor, "consultation.check_in", now)
    # A late one: the no-show's call task is cancelled by its consumer (automation/consultation_steps.py).
    no_show_at = consultation.no_show_at.isoformat() if late and consultation.no_show_at else None
    _emit(
        session,
        consultation,
        visit_events.ConsultationAttended,
        at,
        checked_in_at=at.isoformat(),
        after_no_show=late,
        no_show_at=no_show_at,
    )
    lead = session.get(Lead, consultation.lead_id)
    _advance(session, lead, ATTENDED_STAGE, now)
    # The diagnostic records taken at it expire (the clinic's records_valid_days): a reminder before.
    timers.schedule_records_reminder(session=session, consultation=consultation, now=now)


def mark_no_show(*, session: UnitOfWork, actor: Actor, consultation_id: int, now: datetime) -> Consultation:
    """A person marks a scheduled consultation missed (before the engine's own check does)."""
    consultation = get_consultation(
        session=session, clinic_id=actor.clinic_id, consultation_id=consultation_id, for_update=True
    )
    _ensure_status(consultation, ConsultationStatus.SCHEDULED, "marked a no-show")
    miss(session, consultation, actor, now)
    return consultation


def miss(session: UnitOfWork, consultation: Consultation, actor: Actor, now: datetime) -> None:
    consultation.status, consultation.no_show_at, consultation.updated_at = (
        ConsultationStatus.NO_SHOW,
        now,
        now,
    )
    _cancel_check(session, consultation, now)
    lead = session.get(Lead, consultation.lead_id)
    # On the timeline: the playbook's "call within 15 minutes" rule fires on this activity.
    activities.record(
        session=session,
        lead=lead,
        facts=activities.ActivityFacts(
            type=ActivityType.CONSULTATION_NO_SHOW,
            at=now,
            recorded_at=now,
            actor_ref=actor.ref,
            user_id=actor.user_id,
            details={"consultation_id": consultation.id},
        ),
    )
    audit_change(session, consultation, actor, "consultation.no_show", now)
    _emit(session, consultation, visit_events.ConsultationNoShow, now)


def detect_no_show(*, session: UnitOfWork, job, now: datetime) -> None:
    """The ledger handler of `consultation.no_show_check`: no check-in by the start plus the grace
    marks the consultation a no-show (once: a checked-in, cancelled or moved one is left alone)."""
    consultation = session.scalar(
        sa.select(Consultation).where(Consultation.id == job.subject_id).with_for_update()
    )
    if consultation is None or consultation.status != ConsultationStatus.SCHEDULED:
        return
    if consultation.version != (job.payload or {}).get("version"):
        return  # the check of an older time (its reschedule cancelled it; a redelivery)
    lead = session.get(Lead, consultation.lead_id)
    if lead is None or lead.deleted_at is not None or not lead.is_open:
        return  # converted, lost or erased since: nobody to call about it
    miss(session, consultation, Actor.engine(consultation.clinic_id, ENGINE), now)


def erase_for_lead(*, session: UnitOfWork, lead_id: int, now: datetime) -> int:
    """Erasure (app/domains/privacy/erasure.py): the lead's scheduled consultations are cancelled,
    their pending jobs ended, and every consultation of the lead loses its booking system's id, so
    none shows on the day's list as booked or in a calendar feed. No event: no rule may react to a
    person who asked to be forgotten. Returns how many were cancelled."""
    cancelled = 0
    rows = session.scalars(sa.select(Consultation).where(Consultation.lead_id == lead_id).with_for_update())
    for consultation in rows:
        if consultation.status == ConsultationStatus.SCHEDULED:
            consultation.status, consultation.cancelled_at = ConsultationStatus.CANCELLED, now
            scheduling.cancel(session=session, now=now, subject_type=SUBJECT, subject_id=consultation.id)
            cancelled += 1
        consultation.external_id, consultation.updated_at = None, now
    return cancelled


def _ensure_status(consultation: Consultation, status: str, verb: str) -> None:
    if consultation.status != status:
        raise InvalidTransition(f"a consultation {consultation.status} cannot be {verb}")


def _scheduled(session: UnitOfWork, consultation: Consultation, now: datetime, *, rescheduled: bool) -> None:
    """The (new) time's event and its no-show check."""
    clinic = session.get(Clinic, consultation.clinic_id)
    _emit(session, consultation, visit_events.ConsultationScheduled, now, rescheduled=rescheduled)
    session.schedule(
        scheduling.Job(
            kind=NO_SHOW_CHECK,
            due_at=rules.no_show_due(consultation.starts_at, rules.grace_minutes(clinic.settings)),
            dedupe_key=f"consultation:{consultation.id}:no-show:{consultation.version}",
            now=now,
            clinic_id=consultation.clinic_id,
            subject_type=SUBJECT,
            subject_id=consultation.id,
            payload={"version": consultation.version},
        )
    )


def _cancel_check(session: UnitOfWork, consultation: Consultation, now: datetime) -> None:
    scheduling.cancel(
        session=session, now=now, subject_type=SUBJECT, subject_id=consultation.id, kinds=(NO_SHOW_CHECK,)
    )


def _emit(session: UnitOfWork, consultation: Consultation, event_type: type, now: datetime, **extra) -> None:
    """The consultation's event of `event_type` as of `now` (a check-in's: when the family arrived,
    which the follow-up counts from)."""
    event = event_type(
        lead_id=consultation.lead_id,
        consultation_id=consultation.id,
        starts_at=consultation.starts_at.isoformat(),
        version=consultation.version,
        status=consultation.status,
        **extra,
    )
    events.emit(
        session=session,
        event=event,
        subject=events.Subject(consultation.clinic_id, SUBJECT, consultation.id),
        now=now,
    )


def _advance(session: UnitOfWork, lead: Lead, stage: str, now: datetime) -> None:
    """Move the lead forward to `stage`, once: a lead already there or past it stays."""
    if lead.pipeline_stage == stage or not lead.is_open:
        return
    try:
        with session.begin_nested():  # a refused move leaves nothing half-written
            pipeline.change_stage(
                session=session,
                actor=Actor.engine(lead.clinic_id, ENGINE),
                lead_id=lead.id,
                change=pipeline.StageChange(stage=stage),
                now=now,
                ask_why=False,
            )
    except (InvalidTransition, ValidationFailed, Conflict):
        return  # past it already (never backwards), or a pipeline without the stage


def audit_change(
    session: UnitOfWork, consultation: Consultation, actor: Actor, action: str, now: datetime
) -> None:
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=consultation.clinic_id,
            actor=actor.ref,
            action=action,
            subject_type=SUBJECT,
            subject_id=consultation.id,
            after={
                "lead_id": consultation.lead_id,
                "status": consultation.status,
                "starts_at": consultation.starts_at.isoformat(),
            },
            at=now,
        ),
    )


def by_external_id(session: UnitOfWork, clinic_id: int, external_id: str) -> Consultation | None:
    return session.scalar(
        sa.select(Consultation)
        .where(Consultation.clinic_id == clinic_id, Consultation.external_id == external_id)
        .with_for_update()
    )
