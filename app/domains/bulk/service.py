"""Bulk post-event follow-ups: one task per lead, made in chunks by ledger jobs on the bulk queue.

The request resolves its leads (ids, or a filter) and freezes them into chunk jobs, written with the
bulk job in one transaction. Each chunk is one ledger job: it inserts its tasks set-based with the
dedupe key `bulk:{job}:lead:{lead}` (a retried or redelivered chunk makes none twice) and adds its
counts to the bulk job in the same transaction. A worker killed mid-chunk leaves the row
dispatched; the redispatch sweep sends it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.domains.assignment import staff
from app.domains.auth.models import Clinic
from app.domains.bulk.events import BulkCompleted
from app.domains.bulk.models import (
    CANCELLED,
    DONE,
    FAILED,
    PENDING,
    ROW_OUTCOMES_OF,
    RUNNING,
    TASKS_CREATE,
    BulkJob,
    BulkJobRow,
)
from app.domains.leads.models import OPEN_STATUSES, Lead
from app.domains.tasks import creation as task_creation
from app.platform.audit import service as audit
from app.platform.db import PageRequest, UnitOfWork, page_of
from app.platform.errors import NotFound, ValidationFailed
from app.platform.events import service as events
from app.platform.roles import Actor, Role
from app.platform.scheduling import service as scheduling
from app.platform.scheduling.models import GAVE_UP as JOB_GAVE_UP
from app.platform.scheduling.models import ScheduledJob

CHUNK_KIND = "bulk.tasks_chunk"
MAX_ERRORS = 100
TASK_FIELDS = ("template_id", "title", "description", "type", "priority", "due_at", "due_in_minutes")


def lead_ids_of(session: UnitOfWork, clinic_id: int, data: dict) -> list[int]:
    """The request's leads in id order: the given ids (all of this clinic), or the filter's open leads."""
    base = sa.select(Lead.id).where(Lead.clinic_id == clinic_id, Lead.deleted_at.is_(None))
    if "lead_ids" in data:
        wanted = sorted(set(data["lead_ids"]))
        found: list[int] = []
        for start in range(0, len(wanted), 10_000):  # well below any database's parameter limit
            found += session.scalars(base.where(Lead.id.in_(wanted[start : start + 10_000]))).all()
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise NotFound(f"lead(s) not found: {', '.join(map(str, missing[:20]))}")
        return sorted(found)
    flt = data["filter"]
    stmt = base.where(Lead.status.in_(OPEN_STATUSES))
    if "source_id" in flt:
        stmt = stmt.where(Lead.source_id == flt["source_id"])
    if "source_campaign" in flt:
        stmt = stmt.where(Lead.source_campaign == flt["source_campaign"])
    if "stage" in flt:
        stmt = stmt.where(Lead.pipeline_stage == flt["stage"])
    if "created_from" in flt:
        stmt = stmt.where(Lead.created_at >= flt["created_from"])
    if "created_to" in flt:
        stmt = stmt.where(Lead.created_at < flt["created_to"])
    return list(session.scalars(stmt.order_by(Lead.id)))


def _round_robin_users(session: UnitOfWork, clinic_id: int) -> list[int]:
    users = staff.in_office(session, clinic_id, [Role.TREATMENT_COORDINATOR])
    if not users:
        raise ValidationFailed("assignee_policy", "round_robin needs an available treatment coordinator")
    return list(users)


@dataclass(frozen=True)
class BulkWork:
    """The work of one bulk job: its `items`, cut into chunks of `chunk_size`, each a ledger job of
    `chunk_kind` with `chunk_payload(first_index, chunk)`; the job's `params`, and what its audit
    entry adds (`audit_after`)."""

    kind: str
    items: list
    chunk_size: int
    chunk_kind: str
    chunk_payload: Callable[[int, list], dict]
    params: dict
    audit_after: dict


def open_bulk_job(*, session: UnitOfWork, actor: Actor, work: BulkWork, now: datetime) -> BulkJob:
    """The bulk job for the `work`, its chunks written in the caller's transaction (dispatched after
    its commit) and audited. With no items it is done at once."""
    kind, items, chunk_size = work.kind, work.items, work.chunk_size
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    job = BulkJob(
        clinic_id=actor.clinic_id,
        kind=kind,
        status=PENDING if chunks else DONE,
        total=len(items),
        done=0,
        failed=0,
        errors=[],
        params=work.params,
        chunks=len(chunks),
        created_by=actor.ref,
        created_at=now,
        updated_at=now,
        finished_at=None if chunks else now,
    )
    session.add(job)
    session.flush()
    for index, chunk in enumerate(chunks):
        session.schedule(
            scheduling.Job(
                kind=work.chunk_kind,
                due_at=now,
                dedupe_key=f"bulk:{job.id}:chunk:{index}",
                now=now,
                clinic_id=actor.clinic_id,
                subject_type="bulk_job",
                subject_id=job.id,
                payload=work.chunk_payload(index * chunk_size, chunk),
            )
        )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="bulk_job.create",
            subject_type="bulk_job",
            subject_id=job.id,
            after={"kind": kind, "total": job.total, **work.audit_after},
            at=now,
        ),
    )
    return job


def start_bulk_tasks(
    *, session: UnitOfWork, actor: Actor, data: dict, chunk_size: int, now: datetime
) -> BulkJob:
    """Validate, resolve the leads and write the bulk job with its chunk jobs of `chunk_size` leads
    (dispatched after commit)."""
    fields = task_creation.task_fields(
        session=session,
        clinic_id=actor.clinic_id,
        data={k: data[k] for k in TASK_FIELDS if k in data},
        now=now,
    )
    policy = data.get("assignee_policy", "lead_owner")
    params: dict = {
        "fields": {**fields, "due_at": fields["due_at"].isoformat()},
        "assignee_policy": policy,
    }
    if policy == "user":
        params["user_id"] = staff.assignee(
            session=session, clinic_id=actor.clinic_id, user_id=data["user_id"], field="user_id"
        ).id
    elif policy == "round_robin":
        params["round_robin"] = _round_robin_users(session, actor.clinic_id)
    return open_bulk_job(
        session=session,
        actor=actor,
        work=BulkWork(
            kind=TASKS_CREATE,
            items=lead_ids_of(session, actor.clinic_id, data),
            chunk_size=chunk_size,
            chunk_kind=CHUNK_KIND,
            chunk_payload=lambda offset, chunk: {"offset": offset, "lead_ids": chunk},
            params=params,
            audit_after={"assignee_policy": policy},
        ),
        now=now,
    )


def get_bulk_job(*, session: UnitOfWork, clinic_id: int, bulk_job_id: int) -> BulkJob:
    """A bulk job of the clinic; a chunk the ledger gave up on makes it failed."""
    job = session.get(BulkJob, bulk_job_id)
    if job is None or job.clinic_id != clinic_id:
        raise NotFound(f"bulk job {bulk_job_id} not found")
    if job.status in (PENDING, RUNNING):
        given_up = session.scalars(
            sa.select(ScheduledJob).where(
                ScheduledJob.subject_type == "bulk_job",
                ScheduledJob.subject_id == job.id,
                ScheduledJob.status.in_(JOB_GAVE_UP),
            )
        ).all()
        if given_up:
            session.expunge(job)  # a read: report, do not write
            job.status = FAILED
            job.errors = [
                *job.errors,
                *({"chunk": c.dedupe_key, "error": c.last_error} for c in given_up),
            ]
    job.outcomes = outcome_counts(session=session, job=job) if job.kind in ROW_OUTCOMES_OF else None
    return job


REPORT_FIELDS = ("outcome", "lead_id", "external_id", "field", "message", "matches")


def record_rows(*, session: UnitOfWork, bulk_id: int, rows: list[dict]) -> None:
    """The per-row report of a chunk: one BulkJobRow per input row (see BulkJobRow for the fields)."""
    if rows:
        empty = dict.fromkeys(REPORT_FIELDS)  # every row names every column: one statement shape
        session.execute(sa.insert(BulkJobRow), [{**empty, "bulk_job_id": bulk_id, **row} for row in rows])


def outcome_counts(*, session: UnitOfWork, job: BulkJob) -> dict[str, int]:
    """The counts of a bulk job's per-row report by outcome ({created, duplicate, invalid} of a lead
    import), every outcome of its kind named."""
    found = dict(
        session.execute(
            sa.select(BulkJobRow.outcome, sa.func.count())
            .where(BulkJobRow.bulk_job_id == job.id)
            .group_by(BulkJobRow.outcome)
        ).all()
    )
    return {outcome: found.get(outcome, 0) for outcome in ROW_OUTCOMES_OF[job.kind]}


def list_rows(
    *, session: UnitOfWork, clinic_id: int, bulk_job_id: int, outcome: str | None, paging: PageRequest
) -> tuple[list[BulkJobRow], int]:
    """A page of a bulk job's per-row report in row order, optionally of one outcome; and the total."""
    get_bulk_job(session=session, clinic_id=clinic_id, bulk_job_id=bulk_job_id)  # 404 for another clinic's
    where = [BulkJobRow.bulk_job_id == bulk_job_id]
    if outcome:
        where.append(BulkJobRow.outcome == outcome)
    rows, total = page_of(session, BulkJobRow, where, order_by=(BulkJobRow.row,), paging=paging)
    return rows, total


def _assignee_of(lead, position: int, params: dict) -> int | None:
    policy = params["assignee_policy"]
    if policy == "user":
        return params["user_id"]
    if policy == "round_robin":
        users = params["round_robin"]
        return users[position % len(users)]
    return lead.assigned_to_id


def run_tasks_chunk(*, session: UnitOfWork, job, now: datetime) -> None:
    """The chunk handler: one task per open lead of the chunk, counts added to the bulk job."""
    bulk = session.get(BulkJob, job.subject_id)
    if bulk is None or bulk.status == CANCELLED:
        return
    params = bulk.params
    fields = {**params["fields"], "due_at": datetime.fromisoformat(params["fields"]["due_at"])}
    lead_ids = job.payload["lead_ids"]
    offset = job.payload["offset"]
    leads = {
        row.id: row
        for row in session.execute(
            sa.select(Lead.id, Lead.status, Lead.deleted_at, Lead.assigned_to_id).where(
                Lead.clinic_id == bulk.clinic_id, Lead.id.in_(lead_ids)
            )
        )
    }
    rows, errors = [], []
    for position, lead_id in enumerate(lead_ids, start=offset):
        lead = leads.get(lead_id)
        if lead is None or lead.deleted_at is not None:
            errors.append({"lead_id": lead_id, "error": "lead not found"})
            continue
        if lead.status not in OPEN_STATUSES:
            errors.append({"lead_id": lead_id, "error": f"lead is {lead.status.lower()}"})
            continue
        assignee = _assignee_of(lead, position, params)
        if assignee is None:
            errors.append({"lead_id": lead_id, "error": "lead has no coordinator"})
            continue
        rows.append(
            {"lead_id": lead_id, "assigned_to_id": assignee, "dedupe_key": f"bulk:{bulk.id}:lead:{lead_id}"}
        )
    tasks = task_creation.alike_tasks(
        clinic_id=bulk.clinic_id,
        fields=fields,
        rows=rows,
        origin={"kind": "bulk", "bulk_job_id": bulk.id},
        now=now,
    )
    clinic = session.get(Clinic, bulk.clinic_id)
    task_creation.write_tasks(session=session, clinic=clinic, tasks=tasks, now=now, bulk=True)
    add_counts(session, bulk.id, done=len(rows), failed=len(errors), errors=errors, now=now)


def add_counts(
    session: UnitOfWork, bulk_id: int, *, done: int, failed: int, errors: list, now: datetime
) -> None:
    """Add a chunk's counts under the row lock (chunks of one job commit concurrently).

    Also the lead import's (app/domains/intake/imports.py), whose chunks are its own job kind."""
    stmt = (
        sa.select(BulkJob)
        .where(BulkJob.id == bulk_id)
        .execution_options(populate_existing=True)
        .with_for_update()  # nothing on SQLite, whose writers are serialised anyway
    )
    bulk = session.scalars(stmt).one()
    bulk.done += done
    bulk.failed += failed
    if errors and len(bulk.errors) < MAX_ERRORS:
        bulk.errors = [*bulk.errors, *errors][:MAX_ERRORS]
    bulk.updated_at = now
    if bulk.status == CANCELLED:
        return  # a chunk already running when it was cancelled: counted, the job stays cancelled
    if bulk.done + bulk.failed >= bulk.total:
        bulk.status, bulk.finished_at = DONE, now
        events.emit(
            session=session,
            event=BulkCompleted(
                bulk_job_id=bulk.id, kind=bulk.kind, total=bulk.total, done=bulk.done, failed=bulk.failed
            ),
            subject=events.Subject(bulk.clinic_id, "bulk_job", bulk.id),
            now=now,
        )
    else:
        bulk.status = RUNNING
