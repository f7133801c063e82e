"""My next call: a coordinator asks for the most urgent open task they may work and holds it for a
lease (default 10 minutes, the clinic's `next_task_lease_minutes`), hidden from every other caller's
next-task meanwhile. Completing, snoozing or cancelling the task releases it; so does the caller
giving it back, and the lease running out (a lapsed claim is free again: no sweep).

The order: the caller's task already held (asking again hands it back, renewed); then their own
tasks due within the hour; then, where the clinic allows (`next_task_team_overdue`, default on),
teammates' unclaimed overdue tasks; then the caller's later tasks. Within each: earliest due, then
priority. Each claim is a compare-and-set UPDATE (app/domains/tasks/queries.py), so two coordinators
asking at once never get the same task.

Why this task (the lead's SLA clock, the best time to call) is told one tier up, where those
domains may be read: app/domains/intelligence/next_call.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.leads.models import Lead
from app.domains.tasks import queries, rules
from app.domains.tasks.models import OPEN_TASK_STATUSES, PRIORITY_RANK, LeadTask
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, Forbidden, NotFound
from app.platform.roles import Actor
from app.platform.stream import feed

DEFAULT_LEASE_MINUTES = 10
DUE_SOON = timedelta(hours=1)
ROUNDS = 3  # candidates tried per scope before moving on: each lost race costs one


@dataclass(frozen=True)
class Claim:
    task: LeadTask
    claimed_until: datetime
    scope: str  # held, yours, team_overdue, yours_later: which round of the order found it
    lead_score: float | None


def lease_minutes(settings: dict | None) -> int:
    return int((settings or {}).get("next_task_lease_minutes") or DEFAULT_LEASE_MINUTES)


def team_overdue_allowed(settings: dict | None) -> bool:
    return (settings or {}).get("next_task_team_overdue", True) is not False


def _free(user_id: int, now: datetime) -> sa.ColumnElement:
    """Nobody else holds the task: never claimed, the claim lapsed, or it is the caller's."""
    return sa.or_(
        LeadTask.claimed_until.is_(None), LeadTask.claimed_until < now, LeadTask.claimed_by_id == user_id
    )


def _scopes(actor: Actor, settings: dict | None, now: datetime) -> list[tuple[str, list]]:
    mine = LeadTask.assigned_to_id == actor.user_id
    scopes = [
        ("held", [LeadTask.claimed_by_id == actor.user_id, LeadTask.claimed_until >= now]),
        ("yours", [mine, LeadTask.due_at <= now + DUE_SOON]),
    ]
    if team_overdue_allowed(settings):
        scopes.append(("team_overdue", [LeadTask.assigned_to_id != actor.user_id, LeadTask.due_at < now]))
    return [*scopes, ("yours_later", [mine])]


def _priority_rank() -> sa.ColumnElement:
    return sa.case(*[(LeadTask.priority == p.value, rank) for p, rank in PRIORITY_RANK.items()], else_=9)


def next_task(*, session: UnitOfWork, actor: Actor, now: datetime) -> Claim | None:
    """Claim the caller's next task (None: nothing left to work)."""
    if actor.user_id is None:
        raise Forbidden("next-task hands work to a user; an API key has none")
    clinic = session.get(Clinic, actor.clinic_id)
    until = now + timedelta(minutes=lease_minutes(clinic.settings))
    held = _free(actor.user_id, now)
    order = [LeadTask.due_at, _priority_rank(), LeadTask.id]
    for scope, conditions in _scopes(actor, clinic.settings, now):
        where = [LeadTask.clinic_id == actor.clinic_id, held, *conditions]
        for _ in range(ROUNDS):
            ids = queries.claimable_task_ids(session, where, order, now, limit=1)
            if not ids:
                break
            if queries.set_claim(session, task_id=ids[0], user_id=actor.user_id, until=until, held=held):
                claim = _claimed(session, ids[0], scope, until)
                if claim.task.assigned_to_id not in (None, actor.user_id):
                    _tell_assignee(session, claim, actor, now)
                return claim
    return None


def _tell_assignee(session: UnitOfWork, claim: Claim, actor: Actor, now: datetime) -> None:
    """A teammate took the assignee's overdue task: their live stream says who, and until when."""
    task = claim.task
    note = feed.StreamNote(
        type="task.claimed",
        data={
            "task": rules.task_summary(task),
            "claimed_by_id": actor.user_id,
            "claimed_until": claim.claimed_until.isoformat(),
        },
        lead_id=task.lead_id,
    )
    feed.record(session=session, clinic_id=task.clinic_id, user_id=task.assigned_to_id, note=note, now=now)


def renew(*, session: UnitOfWork, actor: Actor, task_id: int, now: datetime) -> Claim:
    """Extend the caller's claim on a task by a new lease (409 once someone else holds it or it closed)."""
    if actor.user_id is None:
        raise Forbidden("next-task hands work to a user; an API key has none")
    clinic = session.get(Clinic, actor.clinic_id)
    owned = session.scalar(
        sa.select(LeadTask.id).where(LeadTask.id == task_id, LeadTask.clinic_id == actor.clinic_id)
    )
    if owned is None:
        raise NotFound(f"task {task_id} not found")
    until = now + timedelta(minutes=lease_minutes(clinic.settings))
    if not queries.set_claim(
        session,
        task_id=task_id,
        user_id=actor.user_id,
        until=until,
        held=LeadTask.claimed_by_id == actor.user_id,
    ):
        raise Conflict(
            f"task {task_id} is not claimed by you (another caller holds it, or it is closed)",
            code="task_not_claimed",
        )
    return _claimed(session, task_id, "held", until)


def held_by(*, session: UnitOfWork, actor: Actor, now: datetime) -> LeadTask | None:
    """The open task the caller holds now (its lease not run out), the latest taken if several:
    what their Today shows as the call in hand, whichever page they came from."""
    return session.scalar(
        sa.select(LeadTask)
        .where(
            LeadTask.clinic_id == actor.clinic_id,
            LeadTask.claimed_by_id == actor.user_id,
            LeadTask.claimed_until >= now,
            LeadTask.status.in_(OPEN_TASK_STATUSES),
        )
        .order_by(LeadTask.claimed_until.desc(), LeadTask.id.desc())
        .limit(1)
    )


def give_back(*, session: UnitOfWork, actor: Actor, task_id: int, now: datetime) -> bool:
    """The caller lets go of the task they hold: anyone's next-task may hand it out again. Whether
    they held it (False: the lease had run out, someone else holds it, or it is closed); another
    clinic's task is not found."""
    if actor.user_id is None:
        raise Forbidden("next-task hands work to a user; an API key has none")
    owned = session.scalar(
        sa.select(LeadTask.id).where(LeadTask.id == task_id, LeadTask.clinic_id == actor.clinic_id)
    )
    if owned is None:
        raise NotFound(f"task {task_id} not found")
    return queries.drop_claim(session, task_id=task_id, user_id=actor.user_id, now=now)


def release(task: LeadTask) -> None:
    """The task is no longer held (completed, snoozed, cancelled)."""
    task.claimed_by_id = task.claimed_until = None


def _claimed(session: UnitOfWork, task_id: int, scope: str, until: datetime) -> Claim:
    task = session.scalar(
        sa.select(LeadTask).where(LeadTask.id == task_id).execution_options(populate_existing=True)
    )
    score = session.scalar(sa.select(Lead.score).where(Lead.id == task.lead_id))
    return Claim(task=task, claimed_until=until, scope=scope, lead_score=score)
