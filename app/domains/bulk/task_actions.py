"""Bulk task actions: reassign, reschedule (by an offset or to a time), complete or cancel many tasks.

The request resolves its tasks (ids, or the team-view filter over open tasks) and freezes them into
chunk jobs, written with the bulk job in one transaction. A chunk runs inside its ledger claim's
transaction: each task's change (and the replacement of its timers) commits together with the
chunk's done mark and its counts, so a chunk redelivered after a worker was killed finds its ledger
row either done (nothing to do) or with nothing of it committed: each task is touched once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.assignment import staff
from app.domains.bulk.models import BulkJob
from app.domains.bulk.service import BulkWork, add_counts, open_bulk_job
from app.domains.tasks import service as tasks
from app.domains.tasks import team
from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask
from app.platform.db import UnitOfWork
from app.platform.errors import DomainError, NotFound, ValidationFailed
from app.platform.roles import Actor

TASK_ACTIONS = "tasks.action"  # the bulk job's kind
CHUNK_KIND = "bulk.task_actions_chunk"
MAX_TASKS = 50_000


def _task_ids(session: UnitOfWork, clinic_id: int, data: dict, now: datetime) -> list[int]:
    """The request's tasks in id order: the given ids (all of this clinic), or the filter's open tasks."""
    if "task_ids" in data:
        wanted = sorted(set(data["task_ids"]))
        found: list[int] = []
        for start in range(0, len(wanted), 10_000):  # well below any database's parameter limit
            found += session.scalars(
                sa.select(LeadTask.id).where(
                    LeadTask.clinic_id == clinic_id, LeadTask.id.in_(wanted[start : start + 10_000])
                )
            ).all()
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise NotFound(f"task(s) not found: {', '.join(map(str, missing[:20]))}")
        return sorted(found)
    where = team.conditions(clinic_id=clinic_id, filters=data["filter"], now=now)
    ids = list(
        session.scalars(
            sa.select(LeadTask.id)
            .where(*where, LeadTask.status.in_(OPEN_TASK_STATUSES))
            .order_by(LeadTask.id)
            .limit(MAX_TASKS + 1)
        )
    )
    if len(ids) > MAX_TASKS:
        raise ValidationFailed("filter", f"matches more than {MAX_TASKS} tasks: narrow it")
    return ids


def _action_params(session: UnitOfWork, actor: Actor, data: dict, now: datetime) -> dict:
    """What to do to each task, checked once here so a chunk never meets a bad action."""
    action = data["action"]
    params: dict = {"action": action}
    if action == "reassign":
        params["user_id"] = staff.assignee(
            session=session, clinic_id=actor.clinic_id, user_id=data["user_id"], field="user_id"
        ).id
    elif action == "reschedule":
        if "due_at" in data:
            if data["due_at"] <= now:
                raise ValidationFailed("due_at", "reschedule to a time in the future")
            params["due_at"] = data["due_at"].isoformat()
        else:
            params["offset_minutes"] = data["offset_minutes"]
    elif action == "complete":
        params["outcome"], params["notes"] = data["outcome"], data.get("notes")
    return params


def start(*, session: UnitOfWork, actor: Actor, data: dict, chunk_size: int, now: datetime) -> BulkJob:
    """Validate, resolve the tasks and write the bulk job with its chunk jobs (dispatched after commit)."""
    params = _action_params(session, actor, data, now)
    params["actor"] = {"user_id": actor.user_id, "api_key_id": actor.api_key_id, "role": actor.role}
    return open_bulk_job(
        session=session,
        actor=actor,
        work=BulkWork(
            kind=TASK_ACTIONS,
            items=_task_ids(session, actor.clinic_id, data, now),
            chunk_size=chunk_size,
            chunk_kind=CHUNK_KIND,
            chunk_payload=lambda _offset, chunk: {"task_ids": chunk},
            params=params,
            audit_after={"action": params["action"]},
        ),
        now=now,
    )


def apply_action(*, session: UnitOfWork, actor: Actor, task_id: int, params: dict, now: datetime) -> None:
    """One task's change through the task use cases (each replaces or cancels the task's timers once)."""
    action = params["action"]
    if action == "reassign":
        changes = {"assigned_to_id": params["user_id"]}
    elif action == "reschedule":
        task = tasks.get_task(session=session, clinic_id=actor.clinic_id, task_id=task_id, for_update=True)
        due_at = (
            datetime.fromisoformat(params["due_at"])
            if "due_at" in params
            else task.due_at + timedelta(minutes=params["offset_minutes"])
        )
        changes = {"due_at": due_at}
    elif action == "complete":
        tasks.complete_task(
            session=session,
            actor=actor,
            task_id=task_id,
            notes=params.get("notes"),
            outcome=params["outcome"],
            now=now,
        )
        return
    else:
        tasks.cancel_task(session=session, actor=actor, task_id=task_id, now=now)
        return
    tasks.update_task(session=session, actor=actor, task_id=task_id, changes=changes, now=now)


def run_chunk(*, session: UnitOfWork, job, now: datetime) -> None:
    """The chunk handler: each task changed (or its refusal listed), counts added to the bulk job."""
    bulk = session.get(BulkJob, job.subject_id)
    if bulk is None:
        return
    who = bulk.params["actor"]
    actor = Actor(
        clinic_id=bulk.clinic_id,
        permissions=frozenset(),
        user_id=who["user_id"],
        api_key_id=who["api_key_id"],
        role=who["role"],
    )
    done, errors = 0, []
    for task_id in job.payload["task_ids"]:
        try:
            with session.begin_nested():  # a refused task leaves nothing half-changed
                apply_action(session=session, actor=actor, task_id=task_id, params=bulk.params, now=now)
            done += 1
        except DomainError as refusal:
            errors.append({"task_id": task_id, "error": refusal.message})
    add_counts(session, bulk.id, done=done, failed=len(errors), errors=errors, now=now)
