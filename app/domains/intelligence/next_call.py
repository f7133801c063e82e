"""My next call with why: the claim is app/domains/tasks/claims.py's; the reasons are told here, one tier up,
where the lead's SLA clock (app/domains/tasks/sla) and its best contact time (contact_times.py) may be read.

Every reason is a field of `why`, null when it does not apply or is not known (no running SLA clock,
no call history, an unscored lead), and `summary` says them in words.
"""

from __future__ import annotations

from datetime import datetime

from app.domains.auth.models import Clinic
from app.domains.business_hours.rules import calendar_of
from app.domains.intelligence import contact_times
from app.domains.leads.models import Lead
from app.domains.tasks import claims
from app.domains.tasks.sla import service as sla
from app.domains.tasks.sla.models import SlaClock, SlaState
from app.platform.db import UnitOfWork
from app.platform.roles import Actor


def next_task(*, session: UnitOfWork, actor: Actor, now: datetime) -> dict | None:
    """POST /api/me/next-task: claim the caller's next task (None: nothing left), with why."""
    claim = claims.next_task(session=session, actor=actor, now=now)
    return None if claim is None else _answer(session, claim, now)


def renew(*, session: UnitOfWork, actor: Actor, task_id: int, now: datetime) -> dict:
    """POST /api/me/next-task/:id/renew: another lease on the task the caller holds, with why."""
    return _answer(session, claims.renew(session=session, actor=actor, task_id=task_id, now=now), now)


def release(*, session: UnitOfWork, actor: Actor, task_id: int, now: datetime) -> bool:
    """POST /api/me/next-task/:id/release: give back the task the caller holds; whether they held it."""
    return claims.give_back(session=session, actor=actor, task_id=task_id, now=now)


def _answer(session: UnitOfWork, claim: claims.Claim, now: datetime) -> dict:
    lead = session.get(Lead, claim.task.lead_id)
    clinic = session.get(Clinic, lead.clinic_id)
    clock = sla.running_clock(session=session, lead_id=lead.id)
    best = contact_times.best_time_now(session=session, clinic=clinic, lead=lead, now=now)
    return {
        "task": claim.task,
        "claimed_until": claim.claimed_until,
        "why": why(claim, clock, best, clinic, now),
    }


def _minutes(seconds: float) -> int:
    return round(seconds / 60)


def _sla_out(clock: SlaClock | None, now: datetime) -> dict | None:
    if clock is None:
        return None
    return {
        "kind": clock.kind,
        "status": clock.status,
        "due_at": clock.due_at,
        "minutes_left": _minutes((clock.due_at - now).total_seconds()),
    }


def why(
    claim: claims.Claim, clock: SlaClock | None, best: dict | None, clinic: Clinic, now: datetime
) -> dict:
    """Why this task: whose it is, how late or how soon, its priority, the lead's score, the SLA
    clock running out first and the best time to call."""
    task = claim.task
    late = _minutes((now - task.due_at).total_seconds())
    out: dict = {
        "scope": claim.scope,
        "priority": task.priority,
        "overdue_minutes": late if late > 0 else None,
        "due_in_minutes": -late if late <= 0 else None,
        "lead_score": None if claim.lead_score is None else round(claim.lead_score, 3),
        "sla": _sla_out(clock, now),
        "best_contact_time": best,
    }
    reasons = [f"overdue by {late} min" if late > 0 else f"due in {-late} min"]
    if claim.scope == "team_overdue":
        reasons.append("a teammate's overdue task nobody has taken")
    if task.priority in ("URGENT", "HIGH"):
        reasons.append(f"{task.priority.lower()} priority")
    if out["lead_score"] is not None:
        reasons.append(f"lead score {claim.lead_score:.0%}")
    if out["sla"] is not None:
        reasons.append(_sla_words(out["sla"]))
    if best is not None:
        reasons.append(_best_words(best, clinic))
    out["summary"] = "; ".join(reasons)
    return out


def _sla_words(clock: dict) -> str:
    label = clock["kind"].replace("_", " ")
    state = " in warning" if clock["status"] == SlaState.WARNING else ""
    left = clock["minutes_left"]
    return f"{label} SLA{state}: {left} min left" if left > 0 else f"{label} SLA{state}: due now"


def _best_words(best: dict, clinic: Clinic) -> str:
    if best["is_now"]:
        return f"now is the best hour to call ({best['rate']:.0%} answered)"
    local = best["starts_at"].astimezone(calendar_of(clinic).zone)
    return f"best hour to call: {local:%a %H:%M} ({best['rate']:.0%} answered)"
