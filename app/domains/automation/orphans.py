"""Every open lead always has a next step: the orphan sweep.

An *orphan* is an open lead with no open task, no pending automated step (an open ledger row
about the lead) and no active sequence:
nothing will make anyone look at it again. The sweep gives each orphan, once it has been one for
the clinic's `orphan_after_hours` (default 24), a follow-up task for its owner, made by an
automated step that names the sweep (the why-trail shows it), once per orphan spell. The sweep only
plans the step (a row in the step table and one on the ledger, due at once or when the clinic next
opens); a worker carries it out, so a run that finds many orphans stays a short transaction. From
the moment it is planned the lead has a next step again (its pending ledger row).

Flat in table size: a run does not scan the leads. It walks them by primary key, a slice of
`slice_size` ids per run (each lead checked with index lookups on its tasks, steps and
enrollments), and carries on from there next run; after the last lead it starts over. A pass over
N leads takes N / slice_size runs, so a lead is seen at most one pass after it became an orphan.
The walk's position and the orphans each pass found (the `orphan_leads` metric) are one row,
locked while a run works, so two beats take turns instead of doubling the work.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.assignment import service as assignment
from app.domains.automation import rules, steps
from app.domains.automation.attempts import clinic_of
from app.domains.automation.models import (
    AutomationStep,
    EnrollmentStatus,
    OrphanSweep,
    SequenceEnrollment,
)
from app.domains.business_hours.rules import within_business_hours
from app.domains.leads.models import OPEN_STATUSES, Lead
from app.domains.tasks.escalation import LEAD_ESCALATION
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask
from app.platform.db import UnitOfWork
from app.platform.scheduling.models import OPEN, ScheduledJob

if TYPE_CHECKING:
    from app.domains.auth.models import Clinic

SWEEP_NAME = "automation.find_orphan_leads"  # the beat task; the why-trail names it
# Why an orphan has no next step, as a lead's `next_step_blocked` keeps it (worded in the console).
NO_OWNER = "no_owner"  # no owner, nobody available to assign and no fallback owner
UNREACHABLE = "unreachable"  # do not contact, or opted out on every channel
# An orphan the sweep has not yet given a follow-up (the console says so; never stored).
NOT_PLANNED_YET = "not_planned_yet"
_STATE = "orphans"

_OPEN_TASK = sa.exists().where(LeadTask.lead_id == Lead.id, LeadTask.status.in_(OPEN_TASK_STATUSES))


def _pending_step(derived_kinds: Iterable[str]) -> sa.Exists:
    """A step is a ledger job that fires later: any open ledger row about the lead (a
    delayed automation step, events still to process, ...). A scheduled AutomationStep always has
    one. Not the no-contact escalation (a watchdog that tells the admins, not a follow-up with the
    lead) nor a derived kind's (its re-scoring, its report counts: the engine's
    `JobKinds.derived_kinds()`, app/bootstrap.py)."""
    return sa.exists().where(
        ScheduledJob.subject_type == "lead",
        ScheduledJob.subject_id == Lead.id,
        ScheduledJob.status.in_(OPEN),
        ScheduledJob.kind.notin_([LEAD_ESCALATION, *derived_kinds]),
    )


_ACTIVE_SEQUENCE = sa.exists().where(
    SequenceEnrollment.lead_id == Lead.id, SequenceEnrollment.status == EnrollmentStatus.ACTIVE
)


def no_next_step(derived_kinds: Iterable[str]) -> sa.ColumnElement[bool]:
    """The definition of an orphan, as a condition on Lead (the sweep and GET /api/leads?next_step=none);
    `derived_kinds`: the engine's job kinds that are nobody's next step."""
    return sa.and_(
        Lead.status.in_(OPEN_STATUSES),
        Lead.deleted_at.is_(None),
        ~_OPEN_TASK,
        ~_pending_step(derived_kinds),
        ~_ACTIVE_SEQUENCE,
    )


# When each had its last next step end: the orphan spell starts at the latest of these.
_SINCE = (
    Lead.created_at,
    sa.select(sa.func.max(LeadTask.updated_at)).where(LeadTask.lead_id == Lead.id).scalar_subquery(),
    sa.select(sa.func.max(AutomationStep.finished_at))
    .where(AutomationStep.lead_id == Lead.id)
    .scalar_subquery(),
    sa.select(sa.func.max(SequenceEnrollment.ended_at))
    .where(SequenceEnrollment.lead_id == Lead.id)
    .scalar_subquery(),
)

FOLLOW_UP = {
    "type": "create_task",
    "title": "Follow up: no next step planned",
    "task_type": "FOLLOW_UP",
    "priority": "NORMAL",
    "description": "This open lead had no open task, no pending automated step and no active sequence.",
    "assignee": {"kind": "lead_owner"},
    "notify_owner": True,
    "sweep": SWEEP_NAME,
}


def conditions(next_step: str | None, *, job_kinds) -> list:
    """The lead-list filter `next_step=none`: open leads without a next step (`job_kinds`: the
    engine's, bound by app/bootstrap.py)."""
    return [no_next_step(job_kinds.derived_kinds())] if next_step == "none" else []


def _state(session: UnitOfWork) -> OrphanSweep:
    stmt = sa.select(OrphanSweep).where(OrphanSweep.name == _STATE).with_for_update()
    state = session.scalar(stmt)
    if state is None:
        session.add(OrphanSweep(name=_STATE, after_lead_id=0, found_this_pass=0, tasks_made=0, not_helped=0))
        session.flush()
        state = session.scalar(stmt)
    return state


def find_orphan_leads(
    *, session: UnitOfWork, now: datetime, slice_size: int, max_follow_ups: int = 25
) -> dict:
    """Check the next `slice_size` leads of the walk; plan a follow-up for each due orphan.

    At most `max_follow_ups` a run: a run that reaches it stops its slice at that lead, and the next
    run carries on from there, so a backlog (a first run on old data) is worked off over several
    runs instead of one long transaction. Returns what the run did: orphans found, follow-ups
    planned, whether a pass ended.
    """
    state = _state(session)
    ids = (
        sa.select(Lead.id).where(Lead.id > state.after_lead_id).order_by(Lead.id).limit(slice_size).subquery()
    )
    walked, last_id = session.execute(sa.select(sa.func.count(), sa.func.max(ids.c.id))).one()
    orphans = (
        session.execute(
            sa.select(Lead, *_SINCE)
            .where(
                Lead.id > state.after_lead_id,
                Lead.id <= (last_id or 0),
                no_next_step(session.database.job_kinds.derived_kinds()),
            )
            .order_by(Lead.id)
        ).all()
        if last_id is not None
        else []
    )
    found = made = 0
    clinics: dict[int, Clinic] = {}  # held for the run (the identity map only holds weak references)
    for lead, *ends in orphans:
        found += 1
        clinic = clinics.get(lead.clinic_id) or clinics.setdefault(
            lead.clinic_id, clinic_of(session, lead.clinic_id)
        )
        since = max(t for t in ends if t is not None)
        if now - since < timedelta(hours=rules.orphan_after_hours(clinic.settings)):
            continue  # not an orphan for long enough yet
        blocked = _why_no_next_step(session, clinic, lead, now)
        if blocked is not None:
            if lead.next_step_blocked != blocked:  # each lead counted once per reason
                state.not_helped += 1
                lead.next_step_blocked = blocked
            continue
        lead.next_step_blocked = None
        made += _follow_up(session, clinic, lead, since, now)
        if made >= max_follow_ups:
            last_id, walked = lead.id, slice_size  # the rest of the slice waits for the next run
            break
    state.found_this_pass += found
    state.tasks_made += made
    ended = walked < slice_size
    if ended:  # the walk reached the end: the pass's count is the metric; start over
        state.found_last_pass, state.last_pass_at = state.found_this_pass, now
        state.after_lead_id, state.found_this_pass = 0, 0
    else:
        state.after_lead_id = last_id
    return {"orphans": found, "follow_ups": made, "pass_ended": ended}


def _why_no_next_step(session: UnitOfWork, clinic: Clinic, lead: Lead, now: datetime) -> str | None:
    """Why the orphan cannot have a next step (NO_OWNER, UNREACHABLE), or None. An orphan without an
    owner is first given one: by the clinic's policy, else its fallback owner."""
    if unreachable(lead):
        return UNREACHABLE
    if lead.assigned_to_id is None and not assignment.give_owner(
        session=session, clinic=clinic, lead=lead, actor_ref=SWEEP_NAME, now=now
    ):
        return NO_OWNER
    return None


def unreachable(lead: Lead) -> bool:
    """Nobody may reach the lead: do not contact, or opted out on every channel."""
    return bool(lead.do_not_contact or (lead.sms_opt_out and lead.email_opt_out and lead.whatsapp_opt_out))


def leads_without_next_step(
    *,
    session: UnitOfWork,
    clinic_id: int,
    lead_ids: list[int] | None = None,
    owner_id: int | None = None,
    limit: int | None = None,
) -> dict[int, str]:
    """The clinic's open leads (of `lead_ids`, of `owner_id`, if given) with no next step, each with why,
    oldest first, in one query: an orphan (`no_next_step`, the sweep's definition) or a lead the sweep
    could not help (its `next_step_blocked`). Why: NO_OWNER, UNREACHABLE, or NOT_PLANNED_YET (an orphan
    the sweep has still to give a follow-up)."""
    stmt = (
        sa.select(Lead)
        .where(
            Lead.clinic_id == clinic_id,
            Lead.status.in_(OPEN_STATUSES),
            Lead.deleted_at.is_(None),
            sa.or_(
                Lead.next_step_blocked.is_not(None),
                no_next_step(session.database.job_kinds.derived_kinds()),
            ),
        )
        .order_by(Lead.id)
        .limit(limit)
    )
    if lead_ids is not None:
        stmt = stmt.where(Lead.id.in_(lead_ids))
    if owner_id is not None:
        stmt = stmt.where(Lead.assigned_to_id == owner_id)
    return {lead.id: _why_none(lead) for lead in session.scalars(stmt)}


def _why_none(lead: Lead) -> str:
    if lead.next_step_blocked is not None:
        return lead.next_step_blocked
    if unreachable(lead):
        return UNREACHABLE
    return NO_OWNER if lead.assigned_to_id is None else NOT_PLANNED_YET


def _follow_up(session: UnitOfWork, clinic: Clinic, lead: Lead, since: datetime, now: datetime) -> int:
    """Plan one follow-up task for an orphan of long enough standing, once per orphan spell (1 if planned)."""
    step = steps.record(
        session=session,
        lead=lead,
        planned=steps.PlannedStep(
            action=FOLLOW_UP,
            run_at=within_business_hours(clinic, now),
            dedupe_key=f"orphan:lead:{lead.id}:since:{since.isoformat()}",
            origin={},
            result={"reason": f"no next step since {since.isoformat()}: found by {SWEEP_NAME}"},
        ),
        now=now,
    )
    if step is None:
        return 0  # this spell's follow-up was planned already (its task has since closed the same second)
    steps.plan(session=session, step=step, now=now)
    return 1


def orphan_leads_metric(*, session: UnitOfWork) -> int | None:
    """Orphans the last full pass found (None before the first pass ended)."""
    return session.scalar(sa.select(OrphanSweep.found_last_pass).where(OrphanSweep.name == _STATE))


def sweep_counts(*, session: UnitOfWork) -> tuple[int, int]:
    """(follow-ups planned, leads it could not help) by the sweep, ever."""
    row = session.execute(
        sa.select(OrphanSweep.tasks_made, OrphanSweep.not_helped).where(OrphanSweep.name == _STATE)
    ).one_or_none()
    return (row[0], row[1]) if row is not None else (0, 0)
