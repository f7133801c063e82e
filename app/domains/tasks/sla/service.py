"""SLA clocks: speed to lead (capture -> a person's first outbound attempt) and first response
(capture -> the first contact, a two-way exchange), each a target in the clinic's business time.

A clock starts when the lead is captured: `pending`, with two ledger jobs, the warning at the
clinic's share of the target (80% unless set) and the breach at the target. The warning tells the
lead's owner; the breach tells the clinic admins; both are audited (the why-trail shows the clocks
with those times). The attempt or contact that meets a clock settles it `met`; a lost, converted
or deleted (merged) lead settles it `cancelled`. A job finding its clock settled does nothing, and
each job checks the facts itself before it warns or breaches: an activity whose event is not yet
processed still meets the clock.

Settings (clinic `settings.sla`): speed_to_lead_minutes (default 5), first_response_minutes
(default 1440), business minutes; warning_share (default 0.8).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.activities import rules as activity_rules
from app.domains.activities.models import ActivityDirection, LeadActivity
from app.domains.auth.models import Clinic
from app.domains.business_hours.rules import BusinessCalendar, NeverOpen, add_business_minutes
from app.domains.leads.models import Lead
from app.domains.leads.service import get_lead
from app.domains.outbound import service as notifications
from app.domains.tasks.sla.models import RUNNING, SlaClock, SlaKind, SlaState
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork, among
from app.platform.events.types import Delivered
from app.platform.scheduling import service as scheduling
from app.platform.scheduling.memo import Memo

WARN, BREACH = "sla.warn", "sla.breach"
DEFAULT_TARGETS = {SlaKind.SPEED_TO_LEAD: 5, SlaKind.FIRST_RESPONSE: 1440}
DEFAULT_WARNING_SHARE = 0.8
SYSTEM = "system"


def targets_of(settings: dict | None) -> tuple[dict[str, int], float]:
    """The clinic's targets (business minutes per kind) and its warning share."""
    sla = (settings or {}).get("sla") or {}
    targets = {kind.value: int(sla.get(f"{kind.value}_minutes") or DEFAULT_TARGETS[kind]) for kind in SlaKind}
    return targets, float(sla.get("warning_share") or DEFAULT_WARNING_SHARE)


def _after(calendar: BusinessCalendar, start: datetime, minutes: float) -> datetime:
    try:
        return add_business_minutes(calendar, start, minutes)
    except NeverOpen:  # a clinic with no hours at all: plain time is the best reading
        return start + timedelta(minutes=minutes)


def start_clocks(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """Event consumer of lead.created: the lead's clocks and their warning and breach jobs."""
    lead = session.get(Lead, event.subject_id)
    if lead is None or not lead.is_open or not event.automation:
        return  # a historical import (automation off) starts no clock
    clinic = session.get(Clinic, lead.clinic_id)
    calendar = BusinessCalendar.from_settings(
        clinic.timezone, clinic.business_hours or {}, clinic.holiday_country
    )
    targets, share = targets_of(clinic.settings)
    started = set(session.scalars(sa.select(SlaClock.kind).where(SlaClock.lead_id == lead.id)))
    clocks = [
        SlaClock(
            clinic_id=lead.clinic_id,
            lead_id=lead.id,
            kind=kind,
            status=SlaState.PENDING,
            started_at=lead.created_at,
            warn_at=_after(calendar, lead.created_at, minutes * share),
            due_at=_after(calendar, lead.created_at, minutes),
            target_minutes=minutes,
        )
        for kind, minutes in targets.items()
        if kind not in started  # a redelivered event finds its clocks started
    ]
    for clock in clocks:
        session.add(clock)
    session.flush()  # the clocks' ids name their jobs; one INSERT for all of them
    for clock in clocks:
        for job_kind, due_at in ((WARN, clock.warn_at), (BREACH, clock.due_at)):
            session.schedule(
                scheduling.Job(
                    kind=job_kind,
                    due_at=due_at,
                    dedupe_key=f"sla:{clock.id}:{job_kind}",
                    now=now,
                    clinic_id=lead.clinic_id,
                    subject_type="sla_clock",
                    subject_id=clock.id,
                    payload={"kind": clock.kind},
                )
            )


def _met_by(session: UnitOfWork, clock: SlaClock) -> datetime | None:
    """When the clock's goal was reached, from the timeline (None: not yet)."""
    activity = LeadActivity
    conditions = [activity.lead_id == clock.lead_id, activity.occurred_at >= clock.started_at]
    if clock.kind == SlaKind.SPEED_TO_LEAD:
        conditions += [activity.direction == ActivityDirection.OUTBOUND.value, activity.actor != SYSTEM]
    else:
        conditions.append(activity_rules.contact_clause())
    return session.scalar(sa.select(sa.func.min(activity.occurred_at)).where(*conditions))


def _settle(
    session: UnitOfWork, clock: SlaClock, state: str, reason: str, at: datetime, now: datetime
) -> None:
    clock.status, clock.settled_at, clock.settled_reason = state, at, reason
    scheduling.cancel(
        session=session, now=now, subject_type="sla_clock", subject_id=clock.id, kinds=(WARN, BREACH)
    )
    _audit(session, clock, f"sla.{state}", {"reason": reason, "at": at.isoformat()}, now)


def _audit(session: UnitOfWork, clock: SlaClock, action: str, after: dict, now: datetime) -> None:
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=clock.clinic_id,
            actor=audit.SYSTEM,
            action=action,
            subject_type="lead",
            subject_id=clock.lead_id,
            after={"sla": clock.kind, "status": clock.status, **after},
            at=now,
        ),
    )


def _running_clock(session: UnitOfWork, job) -> tuple[SlaClock, Lead] | None:
    """The job's clock if still running and its lead open; a clock whose goal was reached is met now."""
    clock = session.scalar(sa.select(SlaClock).where(SlaClock.id == job.subject_id).with_for_update())
    if clock is None or clock.status not in RUNNING:
        return None
    lead = session.get(Lead, clock.lead_id)
    if lead is None or not lead.is_open or lead.deleted_at is not None:
        _settle(session, clock, SlaState.CANCELLED, "lead closed", job.due_at, job.due_at)
        return None
    met_at = _met_by(session, clock)
    if met_at is not None:
        _settle(session, clock, SlaState.MET, _goal(clock), met_at, met_at)
        return None
    return clock, lead


def _goal(clock: SlaClock) -> str:
    return "attempt" if clock.kind == SlaKind.SPEED_TO_LEAD else "contact"


def _label(clock: SlaClock) -> str:
    return clock.kind.replace("_", " ")


def warn(*, session: UnitOfWork, job, now: datetime, memo: Memo) -> None:
    """The warning job: tell the lead's owner the clock is at its share, before the breach."""
    running = _running_clock(session, job)
    if running is None or running[0].status != SlaState.PENDING:
        return
    clock, lead = running
    clock.status, clock.warned_at = SlaState.WARNING, now
    notifications.notify_staff(
        session=session,
        clinic_id=clock.clinic_id,
        user_id=lead.assigned_to_id,
        notice=notifications.StaffNotice(
            kind="sla_warning",
            title=f"{_label(clock).capitalize()} due soon: {lead.first_name} {lead.last_name}",
            body=f"Lead {lead.id}: the {_label(clock)} target is reached at {clock.due_at.isoformat()}",
            link=f"/api/leads/{lead.id}",
            dedupe_key=f"sla:{clock.id}:warning",
            origin={"kind": "sla", "sla_clock_id": clock.id},
        ),
        now=now,
        memo=memo,
    )
    _audit(
        session,
        clock,
        "sla.warning",
        {"due_at": clock.due_at.isoformat(), "owner_id": lead.assigned_to_id},
        now,
    )


def breach(*, session: UnitOfWork, job, now: datetime, memo: Memo) -> None:
    """The breach job: the target passed with no attempt (or contact): every active admin is told."""
    running = _running_clock(session, job)
    if running is None:
        return
    clock, lead = running
    clock.status, clock.breached_at = SlaState.BREACHED, now
    notifications.notify_admins(
        session=session,
        clinic_id=clock.clinic_id,
        notice=notifications.StaffNotice(
            kind="escalation",
            title=f"{_label(clock).capitalize()} missed: {lead.first_name} {lead.last_name}",
            body=f"Lead {lead.id}: no {_goal(clock)} by {clock.due_at.isoformat()}",
            link=f"/api/leads/{lead.id}",
            dedupe_key=f"sla:{clock.id}:breach",
            origin={"kind": "sla", "sla_clock_id": clock.id},
        ),
        now=now,
        memo=memo,
    )
    _audit(session, clock, "sla.breached", {"due_at": clock.due_at.isoformat()}, now)


def on_activity(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """Event consumer of activity.logged: an attempt or contact meets the running clocks it answers."""
    activity = event.data
    lead_id = activity.lead_id
    kinds = []
    if str(activity.direction or "").upper() == ActivityDirection.OUTBOUND.value and not activity.system:
        kinds.append(SlaKind.SPEED_TO_LEAD.value)
    if activity.contact:
        kinds.append(SlaKind.FIRST_RESPONSE.value)
    if lead_id is None or not kinds:
        return  # the capture's own entry, an automated message, an inbound note: nothing to settle
    clocks = session.scalars(
        sa.select(SlaClock)
        .where(
            SlaClock.lead_id == lead_id,
            SlaClock.kind.in_(kinds),
            SlaClock.status.in_([s.value for s in RUNNING]),
        )
        .with_for_update()
    )
    for clock in clocks:
        met_at = _met_by(session, clock)
        if met_at is not None:
            _settle(session, clock, SlaState.MET, _goal(clock), met_at, now)


def _on_closed(reason: str):
    def cancel_clocks(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
        lead_id = event.data.lead_id
        clocks = session.scalars(
            sa.select(SlaClock)
            .where(SlaClock.lead_id == lead_id, SlaClock.status.in_([s.value for s in RUNNING]))
            .with_for_update()
        )
        for clock in clocks:
            _settle(session, clock, SlaState.CANCELLED, reason, now, now)

    cancel_clocks.__name__ = f"cancel_sla_on_{reason}"
    return cancel_clocks


on_lost, on_converted, on_deleted = _on_closed("lost"), _on_closed("converted"), _on_closed("deleted")


def clocks_of(*, session: UnitOfWork, clinic_id: int, lead_id: int) -> list[SlaClock]:
    """GET /api/leads/:id/sla: the lead's clocks (another clinic's lead is a 404)."""
    lead = get_lead(session=session, clinic_id=clinic_id, lead_id=lead_id)
    return list(session.scalars(sa.select(SlaClock).where(SlaClock.lead_id == lead.id).order_by(SlaClock.id)))


def running_clock(*, session: UnitOfWork, lead_id: int) -> SlaClock | None:
    """The lead's running clock (pending or warning) that falls due first (None: none running)."""
    return session.scalar(
        sa.select(SlaClock)
        .where(SlaClock.lead_id == lead_id, SlaClock.status.in_([s.value for s in RUNNING]))
        .order_by(SlaClock.due_at, SlaClock.id)
        .limit(1)
    )


def running_clocks(*, session: UnitOfWork, lead_ids: list[int]) -> dict[int, SlaClock]:
    """`running_clock` of many leads in one query (a page's list): {lead id: its clock due first}."""
    if not lead_ids:
        return {}
    clocks = session.scalars(
        sa.select(SlaClock)
        .where(SlaClock.lead_id.in_(lead_ids), SlaClock.status.in_([s.value for s in RUNNING]))
        .order_by(SlaClock.lead_id, SlaClock.due_at, SlaClock.id)
    )
    first: dict[int, SlaClock] = {}
    for clock in clocks:
        first.setdefault(clock.lead_id, clock)
    return first


def breached_leads(*, session: UnitOfWork, clinic_id: int, lead_ids: list[int]) -> set[int]:
    """Which of `lead_ids` have a clock that breached its target (one query for a page of leads)."""
    if not lead_ids:
        return set()
    return set(
        session.scalars(
            sa.select(SlaClock.lead_id).where(
                SlaClock.clinic_id == clinic_id,
                among(session, SlaClock.lead_id, lead_ids),
                SlaClock.status == SlaState.BREACHED.value,
            )
        )
    )
