"""A step's wait: after its message or task, the enrollment waits for what the family does.

The wait is an `AutomationStep` of its own (action type `sequence_wait`) carrying what it waits
for and where each outcome leads, with a ledger job at its timeout. Whichever comes first takes
the wait: an event's consumer (app/domains/sequences/branching.py) or the timeout's job, each
under the wait row's lock and only while it is still scheduled, so exactly one outcome chooses the
next step and the other later finds the wait done and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from app.domains.auth.models import Clinic
from app.domains.automation import rules, steps
from app.domains.business_hours.rules import calendar_of
from app.domains.sequences import graph
from app.platform.db import UnitOfWork

if TYPE_CHECKING:
    from app.domains.automation.models import AutomationStep, SequenceEnrollment
    from app.domains.leads.models import Lead

WAIT_ACTION = "sequence_wait"


def start(
    *, session: UnitOfWork, enrollment: SequenceEnrollment, step: AutomationStep, lead: Lead, now: datetime
) -> None:
    """Begin the wait of `step` (just carried out): its timeout on the ledger, its start on the path."""
    definition, wait = step.action, step.action["wait"]
    until = rules.after_delay(now, wait["timeout"], calendar_of(session.get(Clinic, lead.clinic_id)))
    taken = list(enrollment.path or [])
    if taken:  # the path shows what the lead is waiting for, and until when
        taken[-1] = {**taken[-1], "waiting": {"for": wait["for"], "until": until.isoformat()}}
        enrollment.path = taken
    enrollment.next_step_at = until
    waiting = steps.record(
        session=session,
        lead=lead,
        planned=steps.PlannedStep(
            action={
                "type": WAIT_ACTION,
                "sequence_id": definition["sequence_id"],
                "index": definition["index"],
                "key": definition.get("key") or str(definition["index"] + 1),
                "for": list(wait["for"]),
                "call_outcomes": wait.get("call_outcomes"),
                "on": definition.get("on") or {},
            },
            run_at=until,
            dedupe_key=f"enrollment:{enrollment.id}:wait:{len(taken)}",
            origin={"enrollment_id": enrollment.id, "sequence_step": definition["index"]},
        ),
        now=now,
    )
    if waiting is not None:
        steps.start(session=session, step=waiting, lead=lead, now=now)


def accepts(wait: AutomationStep, outcome: str, call_outcome: str | None) -> bool:
    """Whether the pending `wait` takes `outcome` (a call only with one of its outcomes, if named:
    `call_outcome`, the logged call's)."""
    if outcome not in wait.action.get("for", ()):
        return False
    wanted = wait.action.get("call_outcomes")
    return outcome != "call_logged" or not wanted or call_outcome in wanted


def next_index(steps_: list[dict], wait: AutomationStep, outcome: str) -> int | None:
    """The step `outcome` leads to from the wait (None: the end)."""
    return graph.after(steps_, wait.action["index"], wait.action, outcome)
