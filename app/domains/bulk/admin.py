"""Every bulk job of a clinic, its progress (rate and time left), and cancel."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.bulk.models import CANCELLED, PENDING, RUNNING, BulkJob
from app.domains.bulk.service import get_bulk_job
from app.platform.audit import service as audit
from app.platform.db import PageRequest, UnitOfWork, page_offset
from app.platform.errors import Conflict
from app.platform.roles import Actor
from app.platform.scheduling import service as scheduling

STATUSES = (PENDING, RUNNING, "done", "failed", CANCELLED)


def list_bulk_jobs(
    *, session: UnitOfWork, clinic_id: int, status: str | None, paging: PageRequest
) -> tuple[list[BulkJob], int]:
    """The clinic's bulk jobs, newest first (status as the job itself reports it)."""
    conditions = [BulkJob.clinic_id == clinic_id]
    if status:
        conditions.append(BulkJob.status == status)
    total = session.scalar(sa.select(sa.func.count()).select_from(BulkJob).where(*conditions))
    ids = session.scalars(
        sa.select(BulkJob.id)
        .where(*conditions)
        .order_by(BulkJob.created_at.desc(), BulkJob.id.desc())
        .limit(paging.page_size)
        .offset(page_offset(paging.page, paging.page_size))
    ).all()
    return [get_bulk_job(session=session, clinic_id=clinic_id, bulk_job_id=i) for i in ids], total


def progress(job: BulkJob, now: datetime) -> dict:
    """Done, failed, total, percent, rows a second so far and the seconds left at that rate."""
    processed = job.done + job.failed
    end = job.finished_at or now
    elapsed = max((end - job.created_at).total_seconds(), 0.001)
    rate = processed / elapsed if processed else 0.0
    open_ = job.status in (PENDING, RUNNING)
    left = (job.total - processed) / rate if open_ and rate > 0 else (0.0 if not open_ else None)
    return {
        "id": job.id,
        "status": job.status,
        "done": job.done,
        "failed": job.failed,
        "total": job.total,
        "percent": round(100 * processed / job.total) if job.total else 100,
        "rate": round(rate, 2),
        "seconds_left": None if left is None else round(left),
    }


def cancel_bulk_job(*, session: UnitOfWork, actor: Actor, bulk_job_id: int, now: datetime) -> BulkJob:
    """Stop a pending or running bulk job: chunks not yet run never run (audited); a finished one is a 409."""
    job = session.scalars(
        sa.select(BulkJob)
        .where(BulkJob.id == bulk_job_id, BulkJob.clinic_id == actor.clinic_id)
        .with_for_update()  # nothing on SQLite, whose writers are serialised anyway
    ).first()
    if job is None:
        get_bulk_job(session=session, clinic_id=actor.clinic_id, bulk_job_id=bulk_job_id)  # the 404
    if job.status not in (PENDING, RUNNING):
        raise Conflict(
            f"bulk job {bulk_job_id} is {job.status}; only a pending or running one is cancelled",
            code="invalid_state",
        )
    cancelled = scheduling.cancel(session=session, now=now, subject_type="bulk_job", subject_id=job.id)
    before = {"status": job.status, "done": job.done, "failed": job.failed}
    job.status, job.finished_at, job.updated_at = CANCELLED, now, now
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="bulk_job.cancel",
            subject_type="bulk_job",
            subject_id=job.id,
            at=now,
            before=before,
            after={"status": CANCELLED, "chunks_cancelled": cancelled},
        ),
    )
    job.outcomes = None
    return job
