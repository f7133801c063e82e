"""Helpers for job-ledger tests: read what is queued in Redis, count effects, read job rows."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import sqlalchemy as sa

from app.platform import clock
from app.platform.audit.models import AuditEvent
from app.platform.scheduling import Job, row_of, written
from app.platform.scheduling.models import ScheduledJob
from tests.reliability.handlers import EFFECT


def schedule(*, session, now, **fields) -> ScheduledJob:
    """`uow.schedule(Job(...))`, then the job's row (created, or the one holding its dedupe_key)."""
    job = Job(now=now, **fields)
    session.schedule(job)
    return row_of(session, job)


def schedule_many(*, session, jobs, now) -> list[ScheduledJob]:
    """Each job dict through `uow.schedule`, then written at once: the rows it created (a dedupe_key
    taken already creates none)."""
    for fields in jobs:
        session.schedule(Job(now=now, **fields))
    return written(session)


def queued(redis, queue: str = "realtime") -> list[dict]:
    """The run_job messages waiting in a queue (not yet fetched by a worker): job_id, eta, task, and
    the other rows of a batch's message (`batch`, empty for one row)."""
    found = []
    for raw in redis.lrange(queue, 0, -1):
        message = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        headers = message["headers"]
        found.append(
            {
                "task": headers["task"],
                "job_id": args[0] if args else None,
                "eta": headers.get("eta"),
                "batch": kwargs.get("batch") or [],
            }
        )
    return found


def queued_job_ids(redis, queue: str = "realtime") -> list[int]:
    """The ids of the rows the run_job messages in a queue name (a batch's message names several)."""
    messages = [m for m in queued(redis, queue) if m["task"] == "scheduling.run_job"]
    return sorted(job_id for m in messages for job_id in [m["job_id"], *m["batch"]])


def effects(db) -> tuple[int, int]:
    """(effect rows, distinct jobs with an effect)."""
    with db.unit_of_work() as session:
        row = session.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(AuditEvent.subject_id))).where(
                AuditEvent.action == EFFECT
            )
        ).one()
    return row[0], row[1]


def job(db, job_id: int) -> ScheduledJob:
    with db.unit_of_work() as session:
        return session.get(ScheduledJob, job_id)


def status_counts(db) -> dict[str, int]:
    with db.unit_of_work() as session:
        rows = session.execute(
            sa.select(ScheduledJob.status, sa.func.count()).group_by(ScheduledJob.status)
        ).all()
    return dict(rows)


def add_job(db, tenant, kind: str, due_at, key: str) -> int:
    """One ledger row of `kind` due at `due_at`, scheduled (and published) as the app does; its id."""
    with db.unit_of_work() as session:
        [row] = schedule_many(
            session=session,
            jobs=[{"kind": kind, "due_at": due_at, "dedupe_key": key, "clinic_id": tenant.id}],
            now=clock.now(),
        )
        return row.id


def realtime_waiting(db, tenant, since_seconds: float) -> int:
    """A new lead's processing (a realtime drained kind) due that long ago and not run yet."""
    return add_job(db, tenant, "test.drained", clock.now() - timedelta(seconds=since_seconds), "waiting")
