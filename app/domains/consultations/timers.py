"""A lead's long timers, months or years ahead: recalls, the records' expiry reminder, the benefits
reset nudge.

Each is a `lead_timers` row: its local date (`fires_on`) and the clinic's opening that day in UTC
(`due_at`, fixed when it is set, so a DST change between now and then moves nothing). A recall and a
records reminder wait on the ledger (`consultations.timer`, one job per row: it survives restarts
like every ledger row); when it fires, the row is `done` and its event (`recall.due`,
`records.expiring`) goes to the clinic's default rules, which make the coordinator's call task and
send the family's text as automation steps, through the contact policy (consent, quiet hours, the
outreach pause). The benefits nudge has no pending row: a sweep finds the cost- or
financing-hesitant pending leads on the clinic's reset date and writes each a `done` row (once per
lead and year) with its event, `benefits.reset`.

A conversion, a loss, a deletion, treatment accepted or an erasure cancels the scheduled ones (the
row says why, the ledger job ends); a timer that fires on a lead closed since does nothing but say so.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.auth.models import Clinic
from app.domains.business_hours.rules import NeverOpen, calendar_of, next_open
from app.domains.consultations import rules
from app.domains.consultations.events import BenefitsReset, RecallDue, RecordsExpiring
from app.domains.consultations.models import Consultation, LeadTimer, TimerKind, TimerStatus
from app.domains.leads import service as leads
from app.domains.leads.events import LeadDeleted
from app.domains.leads.models import OPEN_STATUSES, Lead, LeadStatus
from app.domains.pipeline.events import LeadConverted, LeadLost, LeadStageChanged
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import InvalidTransition, NotFound, ValidationFailed
from app.platform.events import service as events
from app.platform.events.types import Delivered
from app.platform.roles import Actor
from app.platform.scheduling import service as scheduling

TIMER_KIND = "consultations.timer"
SUBJECT = "lead_timer"
ENGINE = "consultations"
EVENT_OF = {
    TimerKind.RECALL: RecallDue,
    TimerKind.RECORDS_EXPIRY: RecordsExpiring,
    TimerKind.BENEFITS_RESET: BenefitsReset,
}
# When a clinic never opens (no hours at all): the morning of the day, in its zone.
NEVER_OPEN_HOUR = time(9)
# Why a lead's scheduled timers end, by the event that ends them.
ENDED_BY = {
    LeadConverted.NAME: "the lead converted",
    LeadLost.NAME: "the lead was lost",
    LeadDeleted.NAME: "the lead was deleted",
    LeadStageChanged.NAME: "treatment accepted",
}
ERASED = "the lead was erased"


@dataclass(frozen=True)
class RecallAsk:
    """When to recall: a local date (`on`) or whole months from today (`in_months`); a note for staff."""

    on: date | None = None
    in_months: int | None = None
    note: str | None = None


# --- when -----------------------------------------------------------------------------------------


def local_today(clinic: Clinic, now: datetime) -> date:
    return now.astimezone(ZoneInfo(clinic.timezone)).date()


def opening_on(clinic: Clinic, day: date) -> datetime:
    """The clinic's first opening on `day` (its local date), in UTC; a closed day: its next opening.
    Local date → local time → UTC, computed now: a DST change before then moves nothing."""
    midnight = datetime.combine(day, time(0), ZoneInfo(clinic.timezone)).astimezone(UTC)
    try:
        return next_open(calendar_of(clinic), midnight)
    except NeverOpen:
        return datetime.combine(day, NEVER_OPEN_HOUR, ZoneInfo(clinic.timezone)).astimezone(UTC)


# --- recalls --------------------------------------------------------------------------------------


def schedule_recall(
    *, session: UnitOfWork, actor: Actor, lead_id: int, ask: RecallAsk, now: datetime
) -> LeadTimer:
    """Recall an open lead on a local date, or in whole months from today (the month's end clamped)."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    if not lead.is_open:
        raise InvalidTransition(f"lead {lead.id} is closed: reopen it before a recall", code="lead_closed")
    clinic = session.get(Clinic, lead.clinic_id)
    today = local_today(clinic, now)
    if ask.on is not None and ask.on < today:
        raise ValidationFailed("on", f"a past date: give {today.isoformat()} or later")
    latest = rules.add_months(today, rules.MAX_RECALL_MONTHS)
    if ask.on is not None and ask.on > latest:
        raise ValidationFailed("on", f"at most {rules.MAX_RECALL_MONTHS} months ahead ({latest.isoformat()})")
    day = ask.on if ask.on is not None else rules.add_months(today, ask.in_months or 0)
    key = f"recall:{lead.id}:{secrets.token_hex(8)}"
    timer = _new(session, lead, _Spec(TimerKind.RECALL, day, key, actor.ref), now)
    timer.note = ask.note
    _audit(session, timer, actor.ref, "recall.schedule", now)
    _plan(session, timer, now)
    return timer


def cancel_recall(*, session: UnitOfWork, actor: Actor, recall_id: int, now: datetime) -> LeadTimer:
    """Cancel a scheduled recall: its ledger job ends and nothing goes."""
    timer = session.scalar(
        sa.select(LeadTimer)
        .where(
            LeadTimer.id == recall_id,
            LeadTimer.clinic_id == actor.clinic_id,
            LeadTimer.kind == TimerKind.RECALL,
        )
        .with_for_update()
    )
    if timer is None:
        raise NotFound(f"recall {recall_id} not found")
    if timer.status != TimerStatus.SCHEDULED:
        raise InvalidTransition(f"a recall {timer.status} cannot be cancelled")
    _end(session, timer, f"cancelled by {actor.ref}", now)
    _audit(session, timer, actor.ref, "recall.cancel", now)
    return timer


def of_lead(*, session: UnitOfWork, clinic_id: int, lead_id: int, kind: str | None = None) -> list[LeadTimer]:
    """A lead's long timers (of `kind`), soonest first; another clinic's lead is not found."""
    leads.get_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
    stmt = sa.select(LeadTimer).where(LeadTimer.clinic_id == clinic_id, LeadTimer.lead_id == lead_id)
    if kind is not None:
        stmt = stmt.where(LeadTimer.kind == kind)
    return list(session.scalars(stmt.order_by(LeadTimer.fires_on, LeadTimer.id)))


# --- records expiry -------------------------------------------------------------------------------


def schedule_records_reminder(*, session: UnitOfWork, consultation: Consultation, now: datetime) -> None:
    """An attended consultation's records expire the clinic's `records_valid_days` after it: a
    reminder goes `records_reminder_days` before (nothing if the clinic keeps no such setting, or
    the records had already expired)."""
    clinic = session.get(Clinic, consultation.clinic_id)
    valid_days = rules.records_valid_days(clinic.settings)
    key = f"records:{consultation.id}"
    if valid_days is None or session.scalar(sa.select(LeadTimer.id).where(LeadTimer.dedupe_key == key)):
        return
    consulted_on = consultation.starts_at.astimezone(ZoneInfo(clinic.timezone)).date()
    expires_on, remind_on = rules.records_dates(
        consulted_on, valid_days, rules.records_reminder_days(clinic.settings)
    )
    if expires_on < local_today(clinic, now):
        return
    lead = session.get(Lead, consultation.lead_id)
    by = Actor.engine(clinic.id, ENGINE).ref
    timer = _new(session, lead, _Spec(TimerKind.RECORDS_EXPIRY, remind_on, key, by), now)
    timer.consultation_id, timer.expires_on = consultation.id, expires_on
    _plan(session, timer, now)


# --- firing ---------------------------------------------------------------------------------------


def fire(*, session: UnitOfWork, job, now: datetime) -> None:
    """The ledger handler of `consultations.timer`: the timer is done and its event goes to the
    rules (the call task and the text), once; a lead closed since gets nothing, and the row says why."""
    timer = session.scalar(sa.select(LeadTimer).where(LeadTimer.id == job.subject_id).with_for_update())
    if timer is None or timer.status != TimerStatus.SCHEDULED:
        return  # cancelled, or a redelivery of one that fired
    why_not = closed_because(session.get(Lead, timer.lead_id))
    if why_not is not None:
        _finish(timer, TimerStatus.CANCELLED, now, reason=why_not)
        return
    _finish(timer, TimerStatus.DONE, now)
    _emit(session, timer, now)


def closed_because(lead: Lead | None) -> str | None:
    """Why a lead takes no long timer any more, or None: it is open and undecided."""
    if lead is None or lead.erased_at is not None:
        return ERASED
    if lead.deleted_at is not None:
        return ENDED_BY[LeadDeleted.NAME]
    if lead.status == LeadStatus.CONVERTED:
        return ENDED_BY[LeadConverted.NAME]
    if lead.status not in OPEN_STATUSES:
        return ENDED_BY[LeadLost.NAME] if lead.status == LeadStatus.LOST else f"the lead is {lead.status}"
    if lead.pipeline_stage in rules.ACCEPTED_STAGES:
        return ENDED_BY[LeadStageChanged.NAME]
    return None


# --- ending ---------------------------------------------------------------------------------------


def end_on_close(
    *,
    session: UnitOfWork,
    event: Delivered[LeadConverted | LeadLost | LeadDeleted | LeadStageChanged],
    now: datetime,
) -> int:
    """Event consumer of lead.converted, lead.lost, lead.deleted and lead.stage_changed (to
    treatment accepted or started): the lead's scheduled timers end; returns how many."""
    moved = event.data if isinstance(event.data, LeadStageChanged) else None
    if moved is not None and moved.new_stage not in rules.ACCEPTED_STAGES:
        return 0
    lead_id = event.data.lead_id or event.subject_id
    # A conversion moves the stage first (to treatment started): say it was the conversion.
    converted = moved is not None and moved.status == LeadStatus.CONVERTED
    reason = ENDED_BY[LeadConverted.NAME if converted else event.type]
    return end_for_lead(session=session, lead_id=lead_id, reason=reason, now=now)


def end_for_lead(*, session: UnitOfWork, lead_id: int, reason: str, now: datetime) -> int:
    """End the lead's scheduled timers (their ledger jobs too); returns how many."""
    pending = session.scalars(
        sa.select(LeadTimer)
        .where(LeadTimer.lead_id == lead_id, LeadTimer.status == TimerStatus.SCHEDULED)
        .with_for_update()
    )
    count = 0
    for timer in pending:
        _end(session, timer, reason, now)
        count += 1
    return count


def erase_lead_timers(*, session: UnitOfWork, lead_id: int, now: datetime) -> int:
    """Erasure: the lead's scheduled timers end, and every timer's note goes; returns how many ended."""
    ended = end_for_lead(session=session, lead_id=lead_id, reason=ERASED, now=now)
    session.execute(
        sa.update(LeadTimer)
        .where(LeadTimer.lead_id == lead_id, LeadTimer.note.is_not(None))
        .values(note=None)
        .execution_options(synchronize_session=False)
    )
    return ended


# --- the benefits reset ---------------------------------------------------------------------------


def nudge_benefits(*, session: UnitOfWork, now: datetime) -> int:
    """The sweep: in each clinic whose local date is its benefits reset date, every open lead pending
    a decision for cost or financing gets one nudge this year (a `done` timer and its event); a run
    again the same day, or a second beat, nudges nobody twice. Returns how many were nudged."""
    nudged = 0
    for clinic in session.scalars(sa.select(Clinic)):
        today = local_today(clinic, now)
        if not rules.is_benefits_reset_day(clinic.settings, today):
            continue
        hesitant = session.scalars(
            sa.select(Lead).where(
                Lead.clinic_id == clinic.id,
                Lead.status.in_(OPEN_STATUSES),
                Lead.deleted_at.is_(None),
                Lead.pipeline_stage == rules.BENEFITS_STAGE,
                Lead.hesitation_reason.in_(rules.BENEFITS_HESITATIONS),
            )
        )
        nudged += sum(_nudge(session, lead, today, now) for lead in list(hesitant))
    return nudged


def _nudge(session: UnitOfWork, lead: Lead, today: date, now: datetime) -> bool:
    key = f"benefits:{lead.id}:{today.year}"
    if session.scalar(sa.select(LeadTimer.id).where(LeadTimer.dedupe_key == key)) is not None:
        return False
    spec = _Spec(TimerKind.BENEFITS_RESET, today, key, Actor.engine(lead.clinic_id, ENGINE).ref, due_at=now)
    try:
        # A second beat's sweep may insert the same key meanwhile: its row stands, this one goes.
        with session.begin_nested():
            timer = _new(session, lead, spec, now)
    except IntegrityError:
        return False
    _finish(timer, TimerStatus.DONE, now)
    _emit(session, timer, now)
    return True


# --- rows, jobs, events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """A new timer: its kind, local date, dedupe key, who set it; `due_at` (default: that date's opening)."""

    kind: str
    day: date
    dedupe_key: str
    created_by: str
    due_at: datetime | None = None


def _new(session: UnitOfWork, lead: Lead, spec: _Spec, now: datetime) -> LeadTimer:
    clinic = session.get(Clinic, lead.clinic_id)
    timer = LeadTimer(
        clinic_id=lead.clinic_id,
        lead_id=lead.id,
        kind=spec.kind,
        status=TimerStatus.SCHEDULED,
        fires_on=spec.day,
        due_at=spec.due_at or opening_on(clinic, spec.day),
        dedupe_key=spec.dedupe_key,
        created_by=spec.created_by,
        created_at=now,
        updated_at=now,
    )
    return session.add(timer, with_id=True)


def _plan(session: UnitOfWork, timer: LeadTimer, now: datetime) -> None:
    session.schedule(
        scheduling.Job(
            kind=TIMER_KIND,
            due_at=timer.due_at,
            dedupe_key=f"lead-timer:{timer.id}",
            now=now,
            clinic_id=timer.clinic_id,
            subject_type=SUBJECT,
            subject_id=timer.id,
        )
    )


def _finish(timer: LeadTimer, status: str, now: datetime, reason: str | None = None) -> None:
    timer.status, timer.reason, timer.updated_at = status, reason, now
    if status == TimerStatus.DONE:
        timer.fired_at = now
    else:
        timer.cancelled_at = now


def _end(session: UnitOfWork, timer: LeadTimer, reason: str, now: datetime) -> None:
    _finish(timer, TimerStatus.CANCELLED, now, reason=reason)
    scheduling.cancel(
        session=session, now=now, subject_type=SUBJECT, subject_id=timer.id, kinds=(TIMER_KIND,)
    )


def _emit(session: UnitOfWork, timer: LeadTimer, now: datetime) -> None:
    """The timer's event: ids and dates only (no note: events outlive erasure as ids)."""
    events.emit(
        session=session,
        event=EVENT_OF[timer.kind](
            lead_id=timer.lead_id,
            timer_id=timer.id,
            kind=timer.kind,
            fires_on=timer.fires_on.isoformat(),
            consultation_id=timer.consultation_id,
            expires_on=timer.expires_on.isoformat() if timer.expires_on else None,
        ),
        subject=events.Subject(timer.clinic_id, "lead", timer.lead_id),
        now=now,
    )


def _audit(session: UnitOfWork, timer: LeadTimer, actor_ref: str, action: str, now: datetime) -> None:
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=timer.clinic_id,
            actor=actor_ref,
            action=action,
            subject_type=SUBJECT,
            subject_id=timer.id,
            after={"lead_id": timer.lead_id, "status": timer.status, "fires_on": timer.fires_on.isoformat()},
            at=now,
        ),
    )
