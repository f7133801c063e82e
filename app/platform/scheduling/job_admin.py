"""The ledger as an operator reads and mends it: one job, the jobs by status, kind or subject, a
manual retry (audited)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.platform.audit import service as audit
from app.platform.db import PageRequest, UnitOfWork, page_of
from app.platform.errors import Conflict, NotFound
from app.platform.scheduling import queries
from app.platform.scheduling.models import GAVE_UP as GAVE_UP_STATUSES
from app.platform.scheduling.models import (
    PENDING,
    STATUSES,
    ScheduledJob,
)
from app.platform.scheduling.service import publish_after_commit


def get_job(*, session: UnitOfWork, job_id: int, clinic_id: int) -> ScheduledJob:
    """One of the clinic's jobs; another clinic's (or a system job) is not found."""
    job = session.get(ScheduledJob, job_id)
    if job is None or job.clinic_id != clinic_id:
        raise NotFound(f"job {job_id} not found")
    return job


def list_jobs(
    *,
    session: UnitOfWork,
    clinic_id: int,
    status: str | None = None,
    kind: str | None = None,
    subject: tuple[str, int] | None = None,
    paging: PageRequest,
) -> tuple[list[ScheduledJob], int]:
    """The clinic's jobs, newest due first, filtered by status, kind and subject."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    conditions = [ScheduledJob.clinic_id == clinic_id]
    if status:
        conditions.append(ScheduledJob.status == status)
    if kind:
        conditions.append(ScheduledJob.kind == kind)
    if subject:
        conditions += [ScheduledJob.subject_type == subject[0], ScheduledJob.subject_id == subject[1]]
    rows, total = page_of(
        session,
        ScheduledJob,
        conditions,
        order_by=(ScheduledJob.due_at.desc(), ScheduledJob.id.desc()),
        paging=paging,
    )
    return rows, total


def retry_job(*, session: UnitOfWork, job_id: int, clinic_id: int, actor: str, now: datetime) -> ScheduledJob:
    """A dead (or failed) job runs again now, attempts reset; audited; dispatched after commit."""
    stmt = sa.select(ScheduledJob).where(ScheduledJob.id == job_id, ScheduledJob.clinic_id == clinic_id)
    job = session.scalars(queries.for_update(session, stmt)).first()
    if job is None:
        raise NotFound(f"job {job_id} not found")
    if job.status not in GAVE_UP_STATUSES:
        raise Conflict(
            f"job {job_id} is {job.status}; only a dead or failed job can be retried", code="invalid_state"
        )
    before = {"status": job.status, "attempts": job.attempts, "last_error": job.last_error}
    job.status, job.due_at, job.attempts = PENDING, now, 0
    job.dispatched_at = job.finished_at = job.started_at = None
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=clinic_id,
            actor=actor,
            action="job.retry",
            subject_type="job",
            subject_id=job.id,
            at=now,
            before=before,
            after={"status": PENDING, "attempts": 0, "due_at": now.isoformat()},
        ),
    )
    session.flush()
    publish_after_commit(session, [job], now)
    return job
