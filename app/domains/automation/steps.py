"""Automated steps: recorded with their origin, run at their time by the ledger, cancelled as one.

Every automated action for a lead (from a rule or a sequence) is an `AutomationStep` row first:
the why-trail reads these rows, so a step that ran, was held back by the contact policy, or was
cancelled is always visible with its reason. A step due now runs inside the transaction that
made it; a later one is an `automation.step` job on the ledger, which brings the guarantees
(dispatched after commit, swept if lost, claimed once, retried on error). The executors are the
engine's (app/bootstrap.py): bound to the step job's handler, and read through the unit's Database
for a step run at once (`_executors_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.domains.automation import queries
from app.domains.automation.models import AutomationStep, StepStatus
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork, insert_now, new_row
from app.platform.scheduling import service as scheduling
from app.platform.scheduling.memo import Memo, takes_memo

STEP_KIND = "automation.step"
# A sequence's step: a campaign's, thousands of them coming due together. On the bulk queue, taken in
# turns between clinics and stepping aside for new leads, never ahead of them on the realtime queue.
SEQUENCE_STEP_KIND = "automation.sequence_step"

# A close is the one event whose own steps run on a closed lead (seed 002's "won → kickoff",
# "lost → re-engagement in 30 days"), as long as the lead is still closed that way when they run.
CLOSING_EVENTS = {"lead.converted": "CONVERTED", "lead.lost": "LOST"}


@dataclass(frozen=True)
class PlannedStep:
    """An automated action planned for a lead at `run_at`: once per `dedupe_key`; `origin` names the
    rule or sequence, `conditions` what is checked again when it runs, and `result` starts its
    why-trail (e.g. the reason a sweep planned it)."""

    action: dict
    run_at: datetime
    dedupe_key: str
    origin: dict
    conditions: list | None = None
    result: dict | None = None


def record(
    *,
    session: UnitOfWork,
    lead: Lead,
    planned: PlannedStep,
    now: datetime,
    unique_by_construction: bool = False,
    reserved_id: int | None = None,
) -> AutomationStep | None:
    """Write the `planned` step (once per dedupe key: None if it exists).

    `unique_by_construction`: the caller knows the key is new (it names an event being processed
    for the first time, in the transaction that marks it processed), so the lookup is skipped.
    `reserved_id` (from `reserve_ids`): the step takes that id and is not written yet; `run_new`
    carries it out and then adds it, so its one INSERT holds its outcome (no UPDATE after).
    """
    action, dedupe_key, origin = planned.action, planned.dedupe_key, planned.origin
    if not unique_by_construction:
        exists = session.scalar(sa.select(AutomationStep.id).where(AutomationStep.dedupe_key == dedupe_key))
        if exists is not None:
            return None
    step = new_row(  # every column set, no instrumented setter per attribute
        AutomationStep,
        clinic_id=lead.clinic_id,
        lead_id=lead.id,
        rule_id=origin.get("rule_id"),
        rule_version=origin.get("rule_version"),
        enrollment_id=origin.get("enrollment_id"),
        sequence_step=origin.get("sequence_step"),
        event_id=origin.get("event_id"),
        event_type=origin.get("event_type"),
        action_type=action["type"],
        action=action,
        conditions=planned.conditions or [],
        run_at=planned.run_at,
        status=StepStatus.SCHEDULED,
        result=planned.result or {},
        dedupe_key=dedupe_key,
        created_at=now,
    )
    if reserved_id is not None:
        step.id = reserved_id
        return step
    # Its id names what it makes (tasks, notifications); a cached Core INSERT gets it for less CPU
    # than a flush, and leaves whatever else is pending for the commit's one flush.
    return insert_now(session, step)


def reserve_ids(*, session: UnitOfWork, count: int) -> list[int] | None:
    """Ids for `count` steps not written yet (PostgreSQL); None elsewhere (steps are written at once)."""
    return queries.reserve_step_ids(session, count)


def run_new(
    *,
    session: UnitOfWork,
    step: AutomationStep,
    lead: Lead,
    now: datetime,
    at_once: bool,
    memo: Memo | None = None,
) -> None:
    """Carry out (at_once) or start a step just recorded; one recorded with a reserved id is added
    afterwards, so the commit's flush writes it once with its outcome. `memo`: as `execute`'s."""
    if at_once:
        execute(session=session, step=step, lead=lead, now=now, executors=_executors_of(session), memo=memo)
    else:
        start(session=session, step=step, lead=lead, now=now, memo=memo)
    if step not in session:
        session.add(step)


def is_campaign(step: AutomationStep) -> bool:
    """A sequence's step: bulk work and a campaign's message, after what someone waits for (a rule's
    message to a new lead, a reminder)."""
    return step.enrollment_id is not None


def origin_of(step: AutomationStep) -> dict:
    """What a task or message made by the step carries: enough to find the step and its reason."""
    origin = {"kind": "automation", "step_id": step.id, "event_id": step.event_id}
    if step.rule_id is not None:
        origin.update(rule_id=step.rule_id, rule_version=step.rule_version, conditions=step.conditions)
    if step.enrollment_id is not None:
        origin.update(enrollment_id=step.enrollment_id, sequence_step=step.sequence_step)
    if step.action.get("sweep"):
        origin.update(sweep=step.action["sweep"])
    return origin


def start(
    *, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime, memo: Memo | None = None
) -> None:
    """Run the step now if it is due, else put it on the ledger for its time. `memo`: as `execute`'s."""
    if step.run_at <= now:
        execute(session=session, step=step, lead=lead, now=now, executors=_executors_of(session), memo=memo)
    else:
        _schedule_job(session, step, now)


def _executors_of(session: UnitOfWork) -> Mapping[str, Callable]:
    """The engine's executors, for a step run in the transaction that made it (a rule's task, a
    sequence's first step), deep under the use case or consumer that planned it: reached through the
    unit's Database, which create_app builds with the Wiring (app/bootstrap.py), rather than passed
    down every layer between."""
    return session.database.wiring.step_executors


def plan(*, session: UnitOfWork, step: AutomationStep, now: datetime) -> None:
    """Put a step just recorded on the ledger for its run time, even one due now: a worker carries
    it out in a transaction of its own (a sweep that finds many keeps its own transaction short)."""
    _schedule_job(session, step, now)
    if step not in session:
        session.add(step)


def _schedule_job(session: UnitOfWork, step: AutomationStep, now: datetime) -> None:
    ledger_job = scheduling.Job(
        kind=SEQUENCE_STEP_KIND if is_campaign(step) else STEP_KIND,
        due_at=step.run_at,
        dedupe_key=f"automation-step:{step.id}:{step.run_at.isoformat()}",
        now=now,
        clinic_id=step.clinic_id,
        subject_type="lead",
        subject_id=step.lead_id,
        payload={"step_id": step.id},
        origin=origin_of(step),
    )
    session.schedule(ledger_job)
    job = scheduling.row_of(session, ledger_job)
    step.job_id = job.id


def reschedule(
    *, session: UnitOfWork, step: AutomationStep, run_at: datetime, note: str, now: datetime
) -> None:
    """Move a step to a later time (e.g. out of quiet hours), saying why in its result."""
    if step.job_id is not None:
        scheduling.cancel_job(session=session, job_id=step.job_id, now=now)
    moves = [
        *step.result.get("moved", []),
        {"from": step.run_at.isoformat(), "to": run_at.isoformat(), "why": note},
    ]
    step.result = {**step.result, "moved": moves}
    step.run_at = run_at
    step.status = StepStatus.SCHEDULED
    _schedule_job(session, step, now)


def held_since(step: AutomationStep) -> datetime | None:
    """When the step was first due, if something held it since (quiet hours, the clinic's pause, the
    gap between touches); None if it runs when it was planned."""
    moves = (step.result or {}).get("moved") or []
    return datetime.fromisoformat(moves[0]["from"]) if moves else None


def finish(step: AutomationStep, status: str, now: datetime, **result) -> None:
    step.status = status
    step.result = {**step.result, **result}
    step.finished_at = now


def execute(
    *,
    session: UnitOfWork,
    step: AutomationStep,
    lead: Lead,
    now: datetime,
    executors: Mapping[str, Callable],
    memo: Memo | None = None,
) -> None:
    """Carry the step out, unless the lead has closed since it was planned (then it is skipped, with why).
    `executors`: action type -> executor(session=, step=, lead=, now=), each setting the step's final
    status (the engine's, STEP_EXECUTORS of app/handlers.py). `memo`: the transaction's, from the job
    running (scheduling.Memo), for an executor that names it (a notify: the preferences it read)."""
    if step.status != StepStatus.SCHEDULED:
        return  # already done, skipped or cancelled: a redelivered job changes nothing
    if not may_run_on(step, lead):
        finish(step, StepStatus.SKIPPED, now, reason="the lead is no longer open")
        return
    run = executors.get(step.action_type)
    if run is None:
        finish(step, StepStatus.FAILED, now, reason=f"no executor for {step.action_type!r}")
        return
    if memo is not None and takes_memo(run):
        run(session=session, step=step, lead=lead, now=now, memo=memo)
    else:
        run(session=session, step=step, lead=lead, now=now)


def may_run_on(step: AutomationStep, lead: Lead | None) -> bool:
    """An open lead takes any step; a closed one only the steps of the close that closed it."""
    if lead is None or lead.deleted_at is not None:
        return False
    if lead.is_open:
        return True
    return CLOSING_EVENTS.get(step.event_type or "") == lead.status


def run_step_job(
    *, session: UnitOfWork, job, now: datetime, executors: Mapping[str, Callable], memo: Memo
) -> None:
    """The ledger handler of `automation.step`: run the step it names (row-locked, once), with the
    engine's executors (bound by app/bootstrap.py) and its transaction's memo (the runner's)."""
    step = session.scalar(
        sa.select(AutomationStep).where(AutomationStep.id == job.payload["step_id"]).with_for_update()
    )
    if step is None or step.job_id != job.id:
        return  # a job superseded by a reschedule
    lead = session.get(Lead, step.lead_id)
    execute(session=session, step=step, lead=lead, now=now, executors=executors, memo=memo)


def cancel_pending(
    *,
    session: UnitOfWork,
    lead_id: int,
    reason: str,
    now: datetime,
    action_types: Iterable[str] | None = None,
    keep_event_id: int | None = None,
) -> int:
    """Cancel the lead's scheduled steps (of `action_types`, if given) and their jobs; returns how many.

    `keep_event_id`: the steps that event triggered stay (a close's own steps outlive the close).
    """
    stmt = sa.select(AutomationStep).where(
        AutomationStep.lead_id == lead_id, AutomationStep.status == StepStatus.SCHEDULED
    )
    if keep_event_id is not None:
        stmt = stmt.where(sa.or_(AutomationStep.event_id.is_(None), AutomationStep.event_id != keep_event_id))
    if action_types is not None:
        stmt = stmt.where(AutomationStep.action_type.in_(list(action_types)))
    steps = list(session.scalars(stmt.with_for_update()))
    return cancel_steps(session=session, steps=steps, reason=reason, now=now)


def cancel_steps(*, session: UnitOfWork, steps: Iterable[AutomationStep], reason: str, now: datetime) -> int:
    """Cancel these scheduled steps (locked by the caller) and their jobs; returns how many."""
    count = 0
    for step in steps:
        finish(step, StepStatus.CANCELLED, now, reason=reason)
        if step.job_id is not None:
            scheduling.cancel_job(session=session, job_id=step.job_id, now=now)
        count += 1
    return count


def is_reminder(step: AutomationStep) -> bool:
    """A message counted back from a consultation's start: it belongs to the consultation (a
    reschedule, cancel, check-in or no-show ends it), not to the lead's outreach a reply stops."""
    return bool(step.action.get("not_after"))


def cancel_pending_outreach(
    *, session: UnitOfWork, lead_id: int, reason: str, now: datetime, action_types: Iterable[str]
) -> int:
    """Cancel the lead's scheduled outreach steps of `action_types`, but not its consultation
    reminders (a family answering "can I bring my son?" still wants the reminder)."""
    stmt = sa.select(AutomationStep).where(
        AutomationStep.lead_id == lead_id,
        AutomationStep.status == StepStatus.SCHEDULED,
        AutomationStep.action_type.in_(list(action_types)),
    )
    pending = [step for step in session.scalars(stmt.with_for_update()) if not is_reminder(step)]
    return cancel_steps(session=session, steps=pending, reason=reason, now=now)
