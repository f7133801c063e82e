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
consultation_completed when one is attended, once each, and never backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.domains.auth.models import Clinic
from app.domains.automation import steps
from app.domains.automation.models import AutomationRule, AutomationStep, StepStatus
from app.domains.consultations import rules
from app.domains.consultations.models import Consultation, ConsultationStatus
from app.domains.intake.inbound import messages as inbound
from app.domains.leads import service as leads
from app.domains.leads.models import Lead
from app.domains.pipeline import service as pipeline
from app.domains.tasks import creation as task_creation
from app.domains.tasks import service as tasks
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from app.platform.events import service as events
from app.platform.events.models import DomainEvent
from app.platform.roles import Actor
from app.platform.scheduling import service as scheduling

SCHEDULED, ATTENDED = "consultation.scheduled", "consultation.attended"
NO_SHOW, CANCELLED = "consultation.no_show", "consultation.cancelled"
NO_SHOW_CHECK = "consultation.no_show_check"
BOOKED_STAGE, ATTENDED_STAGE = "consultation_scheduled", "consultation_completed"
SUBJECT = "consultation"
NO_SHOW_RULE = "consultation_no_show"  # the default rule whose call task a late check-in ends
ENGINE = "consultations"
DEFAULT_DURATION = 60


@dataclass(frozen=True)
class Booking:
    """A consultation's time and place as a person or a booking system gives it."""

    starts_at: datetime
    duration_minutes: int = DEFAULT_DURATION
    location: str | None = None
    provider_name: str | None = None
    external_id: str | None = None


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


def of_lead(*, session: UnitOfWork, clinic_id: int, lead_id: int) -> list[Consultation]:
    """A lead's consultations, newest start first."""
    leads.get_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
    return list(
        session.scalars(
            sa.select(Consultation)
            .where(Consultation.clinic_id == clinic_id, Consultation.lead_id == lead_id)
            .order_by(Consultation.starts_at.desc(), Consultation.id.desc())
        )
    )


def of_day(
    *, session: UnitOfWork, clinic_id: int, day: date, status: str | None = None
) -> list[Consultation]:
    """The clinic's consultations starting on `day` (its local calendar day), earliest first."""
    clinic = session.get(Clinic, clinic_id)
    zone = ZoneInfo(clinic.timezone)
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    stmt = sa.select(Consultation).where(
        Consultation.clinic_id == clinic_id, Consultation.starts_at >= start, Consultation.starts_at < end
    )
    if status is not None:
        stmt = stmt.where(Consultation.status == status)
    return list(session.scalars(stmt.order_by(Consultation.starts_at, Consultation.id)))


def scheduled_of_owner(*, session: UnitOfWork, clinic_id: int, user_id: int) -> list[Consultation]:
    """The scheduled consultations of the leads a coordinator owns (their calendar feed)."""
    return list(
        session.scalars(
            sa.select(Consultation)
            .join(Lead, Lead.id == Consultation.lead_id)
            .where(
                Consultation.clinic_id == clinic_id,
                Consultation.status == ConsultationStatus.SCHEDULED,
                Lead.assigned_to_id == user_id,
                Lead.deleted_at.is_(None),
            )
            .order_by(Consultation.starts_at, Consultation.id)
        )
    )


# --- booking and its changes ----------------------------------------------------------------------


def _check(booking: Booking) -> None:
    if not rules.MIN_DURATION <= booking.duration_minutes <= rules.MAX_DURATION:
        raise ValidationFailed(
            "duration_minutes", f"from {rules.MIN_DURATION} to {rules.MAX_DURATION} minutes"
        )


def book(*, session: UnitOfWork, actor: Actor, lead_id: int, booking: Booking, now: datetime) -> Consultation:
    """Book a consultation for an open lead: its confirmation, reminders and no-show check follow."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    consultation = _insert(session, lead, booking, actor, now)
    _audit(session, consultation, actor, "consultation.book", now)
    _scheduled(session, consultation, now, rescheduled=False)
    _advance(session, lead, BOOKED_STAGE, now)
    return consultation


def _insert(session: UnitOfWork, lead: Lead, booking: Booking, actor: Actor, now: datetime) -> Consultation:
    """The consultation's row, scheduled, for an open lead (nothing planned for it yet)."""
    if not lead.is_open:
        raise InvalidTransition(f"lead {lead.id} is closed: reopen it before booking", code="lead_closed")
    _check(booking)
    if booking.external_id is not None and _by_external_id(session, lead.clinic_id, booking.external_id):
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
        version=1,
        created_by=actor.ref,
        created_at=now,
        updated_at=now,
    )
    return session.add(consultation, with_id=True)


def reschedule(
    *, session: UnitOfWork, actor: Actor, consultation_id: int, changes: dict, now: datetime
) -> Consultation:
    """Change a scheduled consultation: a new start replaces every pending reminder and the no-show
    check of the old time (a new confirmation goes); place, provider or length alone move nothing."""
    consultation = get_consultation(
        session=session, clinic_id=actor.clinic_id, consultation_id=consultation_id, for_update=True
    )
    _ensure_status(consultation, ConsultationStatus.SCHEDULED, "rescheduled")
    _apply(session, consultation, changes, actor, now)
    return consultation


def _apply(
    session: UnitOfWork, consultation: Consultation, changes: dict, actor: Actor, now: datetime
) -> None:
    for name in ("location", "provider_name", "duration_minutes"):
        if name in changes:
            setattr(consultation, name, changes[name])
    _check(Booking(consultation.starts_at, consultation.duration_minutes))
    consultation.updated_at = now
    starts_at = changes.get("starts_at")
    if starts_at is None or starts_at == consultation.starts_at:
        return
    consultation.starts_at, consultation.version = starts_at, consultation.version + 1
    consultation.confirmed_at = consultation.reschedule_requested_at = None  # a new time, a new answer
    _cancel_check(session, consultation, now)
    _audit(session, consultation, actor, "consultation.reschedule", now)
    _scheduled(session, consultation, now, rescheduled=True)


def cancel(*, session: UnitOfWork, actor: Actor, consultation_id: int, now: datetime) -> Consultation:
    """Cancel a scheduled consultation: its pending reminders and no-show check end."""
    consultation = get_consultation(
        session=session, clinic_id=actor.clinic_id, consultation_id=consultation_id, for_update=True
    )
    _ensure_status(consultation, ConsultationStatus.SCHEDULED, "cancelled")
    _cancelled(session, consultation, actor, now)
    return consultation


def _cancelled(session: UnitOfWork, consultation: Consultation, actor: Actor, now: datetime) -> None:
    consultation.status, consultation.cancelled_at, consultation.updated_at = (
        ConsultationStatus.CANCELLED,
        now,
        now,
    )
    _cancel_check(session, consultation, now)
    _audit(session, consultation, actor, "consultation.cancel", now)
    _emit(session, consultation, CANCELLED, now)


def check_in(
    *, session: UnitOfWork, actor: Actor, consultation_id: int, now: datetime, at: datetime | None = None
) -> Consultation:
    """The family arrived: attended (also after it was marked a no-show: then the no-show's call task
    is cancelled if still open). The post-consultation follow-up counts from this check-in."""
    consultation = get_consultation(
        session=session, clinic_id=actor.clinic_id, consultation_id=consultation_id, for_update=True
    )
    if consultation.status not in (ConsultationStatus.SCHEDULED, ConsultationStatus.NO_SHOW):
        raise InvalidTransition(f"a consultation {consultation.status} cannot be checked in")
    _attended(session, consultation, actor, min(at or now, now), now)
    return consultation


def _attended(
    session: UnitOfWork, consultation: Consultation, actor: Actor, at: datetime, now: datetime
) -> None:
    late = consultation.status == ConsultationStatus.NO_SHOW
    consultation.status, consultation.checked_in_at = ConsultationStatus.ATTENDED, at
    consultation.updated_at = now
    _cancel_check(session, consultation, now)
    if late:
        tasks.cancel_open_tasks_of_rules(
            session=session,
            lead_id=consultation.lead_id,
            rule_ids=_no_show_rule_ids(session, consultation.clinic_id),
            since=consultation.no_show_at,
            now=now,
        )
    _audit(session, consultation, actor, "consultation.check_in", now)
    _emit(session, consultation, ATTENDED, at, checked_in_at=at.isoformat(), after_no_show=late)
    lead = session.get(Lead, consultation.lead_id)
    _advance(session, lead, ATTENDED_STAGE, now)


def mark_no_show(*, session: UnitOfWork, actor: Actor, consultation_id: int, now: datetime) -> Consultation:
    """A person marks a scheduled consultation missed (before the engine's own check does)."""
    consultation = get_consultation(
        session=session, clinic_id=actor.clinic_id, consultation_id=consultation_id, for_update=True
    )
    _ensure_status(consultation, ConsultationStatus.SCHEDULED, "marked a no-show")
    _no_show(session, consultation, actor, now)
    return consultation


def _no_show(session: UnitOfWork, consultation: Consultation, actor: Actor, now: datetime) -> None:
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
    _audit(session, consultation, actor, "consultation.no_show", now)
    _emit(session, consultation, NO_SHOW, now)


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
    _no_show(session, consultation, Actor.engine(consultation.clinic_id, ENGINE), now)


def _ensure_status(consultation: Consultation, status: str, verb: str) -> None:
    if consultation.status != status:
        raise InvalidTransition(f"a consultation {consultation.status} cannot be {verb}")


def _scheduled(session: UnitOfWork, consultation: Consultation, now: datetime, *, rescheduled: bool) -> None:
    """The (new) time's event and its no-show check."""
    clinic = session.get(Clinic, consultation.clinic_id)
    _emit(session, consultation, SCHEDULED, now, rescheduled=rescheduled)
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


def _emit(session: UnitOfWork, consultation: Consultation, type: str, now: datetime, **extra) -> None:
    """The consultation's event as of `now` (a check-in's: when the family arrived, which the
    follow-up counts from)."""
    events.emit(
        session=session,
        type=type,
        subject=events.Subject(consultation.clinic_id, SUBJECT, consultation.id),
        payload={
            "lead_id": consultation.lead_id,
            "consultation_id": consultation.id,
            "starts_at": consultation.starts_at.isoformat(),
            "version": consultation.version,
            "status": consultation.status,
            **extra,
        },
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


def _audit(session: UnitOfWork, consultation: Consultation, actor: Actor, action: str, now: datetime) -> None:
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


def _no_show_rule_ids(session: UnitOfWork, clinic_id: int) -> set[int]:
    return set(
        session.scalars(
            sa.select(AutomationRule.id).where(
                AutomationRule.clinic_id == clinic_id, AutomationRule.default_key == NO_SHOW_RULE
            )
        )
    )


def _by_external_id(session: UnitOfWork, clinic_id: int, external_id: str) -> Consultation | None:
    return session.scalar(
        sa.select(Consultation)
        .where(Consultation.clinic_id == clinic_id, Consultation.external_id == external_id)
        .with_for_update()
    )


# --- event consumers ------------------------------------------------------------------------------

# Why the steps of a consultation's earlier events end: a new time replaces them, a cancel ends
# them, a check-in or a no-show ends the reminders still waiting.
_ENDED_BECAUSE = {
    SCHEDULED: "the consultation moved to a new time",
    CANCELLED: "the consultation was cancelled",
    ATTENDED: "the family checked in",
    NO_SHOW: "the consultation was missed",
}


def end_earlier_steps(*, session: UnitOfWork, event: DomainEvent, now: datetime) -> int:
    """Event consumer of consultation.* (before the rules): cancel the pending steps the
    consultation's earlier events planned (an old time's reminders), each once; returns how many."""
    payload = event.payload or {}
    if event.type == SCHEDULED and not payload.get("rescheduled"):
        return 0  # a first booking: nothing earlier to end
    earlier = sa.select(DomainEvent.id).where(
        DomainEvent.subject_type == SUBJECT,
        DomainEvent.subject_id == event.subject_id,
        DomainEvent.id != event.id,
    )
    pending = list(
        session.scalars(
            sa.select(AutomationStep)
            .where(
                AutomationStep.lead_id == payload.get("lead_id"),
                AutomationStep.status == StepStatus.SCHEDULED,
                AutomationStep.event_id.in_(earlier),
            )
            .with_for_update()
        )
    )
    return steps.cancel_steps(session=session, steps=pending, reason=_ENDED_BECAUSE[event.type], now=now)


def on_reply(*, session: UnitOfWork, event: DomainEvent, now: datetime) -> str | None:
    """Event consumer of activity.logged: a family's text of C or YES confirms their next scheduled
    consultation; R asks for another time and makes a call task for the coordinator. Returns what it
    did (None: not such a reply, or no consultation to answer)."""
    payload = event.payload or {}
    if payload.get("type") != ActivityType.SMS or payload.get("direction") != ActivityDirection.INBOUND:
        return None
    activity = session.get(LeadActivity, payload.get("activity_id"))
    keyword = rules.reply_keyword(activity.notes if activity is not None else None)
    if keyword is None:
        return None
    consultation = session.scalar(
        sa.select(Consultation)
        .where(
            Consultation.lead_id == activity.lead_id,
            Consultation.status == ConsultationStatus.SCHEDULED,
            Consultation.starts_at >= activity.occurred_at,
        )
        .order_by(Consultation.starts_at)
        .limit(1)
        .with_for_update()
    )
    if consultation is None:
        return None
    actor = Actor.engine(consultation.clinic_id, "family_reply")
    if keyword == rules.CONFIRM:
        if consultation.confirmed_at is None:
            consultation.confirmed_at, consultation.updated_at = activity.occurred_at, now
            _audit(session, consultation, actor, "consultation.confirm", now)
        return keyword
    if consultation.reschedule_requested_at is None:
        consultation.reschedule_requested_at, consultation.updated_at = activity.occurred_at, now
        _audit(session, consultation, actor, "consultation.reschedule_request", now)
    lead = session.get(Lead, consultation.lead_id)
    task_creation.create_system_task(
        session=session,
        lead=lead,
        now=now,
        task=task_creation.SystemTask(
            title="Reschedule the consultation (the family asked by text)",
            type="CALL",
            priority="HIGH",
            due_at=now,
            dedupe_key=f"consultation:{consultation.id}:reschedule-request:{activity.id}",
            origin={"kind": "consultation", "consultation_id": consultation.id, "activity_id": activity.id},
        ),
    )
    return keyword


# --- a booking system's signed appointment webhook -------------------------------------------------


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
    consultation = _by_external_id(session, clinic_id, appointment.external_id)
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
    booking = Booking(**{**appointment.booking.__dict__, "external_id": appointment.external_id})
    if target == ConsultationStatus.SCHEDULED:
        consultation = book(session=session, actor=actor, lead_id=lead.id, booking=booking, now=now)
    else:  # its booking not arrived yet: never confirmed nor reminded, straight to what it became
        consultation = _insert(session, lead, booking, actor, now)
        _audit(session, consultation, actor, "consultation.book", now)
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
            _apply(session, consultation, changes, actor, now)
    elif target == ConsultationStatus.CANCELLED and current == ConsultationStatus.SCHEDULED:
        _cancelled(session, consultation, actor, now)
    elif target == ConsultationStatus.ATTENDED and current in (
        ConsultationStatus.SCHEDULED,
        ConsultationStatus.NO_SHOW,
    ):
        _attended(session, consultation, actor, min(appointment.occurred_at, now), now)
    elif target == ConsultationStatus.NO_SHOW and current == ConsultationStatus.SCHEDULED:
        _no_show(session, consultation, actor, now)
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
