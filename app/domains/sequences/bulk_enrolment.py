"""Bulk enrolment: many leads (ids or a filter) into one sequence, as a bulk job (app/domains/bulk)
whose chunks run on the bulk queue.

After a school screening or an expo, an integrator enrols hundreds of leads in the clinic's "after
the event" sequence with one request. The request checks the sequence and resolves its leads into
chunk jobs written with the bulk job in one transaction (`open_bulk_job`). A chunk runs inside its
ledger claim's transaction: each lead's enrolment (and its first step on the ledger) commits with the
chunk's per-row results and counts, so a chunk redelivered after a worker died finds either all of
it or nothing of it committed, and no lead is enrolled twice.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.bulk.models import (
    ALREADY_ENROLLED,
    CANCELLED,
    DO_NOT_CONTACT,
    ENROLLED,
    NOT_ENROLLED,
    OPTED_OUT,
    SEQUENCE_ENROLMENT,
    BulkJob,
)
from app.domains.bulk.service import BulkWork, add_counts, lead_ids_of, open_bulk_job, record_rows
from app.domains.leads.models import Lead
from app.domains.sequences import service as sequences
from app.domains.sequences.models import Sequence
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, DomainError
from app.platform.roles import Actor

CHUNK_KIND = "bulk.enrolment_chunk"
# The opt-out that silences each message channel of a sequence (a call step needs no consent).
_OPT_OUTS = {"email": "email_opt_out", "sms": "sms_opt_out", "whatsapp": "whatsapp_opt_out"}


def start(
    *, session: UnitOfWork, actor: Actor, sequence_id: int, data: dict, chunk_size: int, now: datetime
) -> BulkJob:
    """Check the sequence (404 another clinic's, 409 inactive), resolve the leads and write the bulk
    job with its chunk jobs (dispatched after commit)."""
    sequence = sequences.get_sequence(session=session, clinic_id=actor.clinic_id, sequence_id=sequence_id)
    if not sequence.active:
        raise Conflict(
            f"sequence {sequence.id} is inactive; activate it before enrolling leads",
            code="sequence_inactive",
        )
    return open_bulk_job(
        session=session,
        actor=actor,
        work=BulkWork(
            kind=SEQUENCE_ENROLMENT,
            items=lead_ids_of(session, actor.clinic_id, data),
            chunk_size=chunk_size,
            chunk_kind=CHUNK_KIND,
            chunk_payload=lambda offset, chunk: {"offset": offset, "lead_ids": chunk},
            params={"sequence_id": sequence.id, "enrolled_by": actor.ref},
            audit_after={"sequence_id": sequence.id},
        ),
        now=now,
    )


def silenced(lead: Lead, sequence: Sequence) -> bool:
    """Whether every step of the sequence would be refused for the lead's opt-outs: enrolling it
    would only collect skipped steps. A sequence with a call step always has something to do."""
    channels = {step.get("channel") for step in sequence.steps}
    return bool(channels) and all(
        channel in _OPT_OUTS and getattr(lead, _OPT_OUTS[channel]) for channel in channels
    )


def _enrol_one(
    session: UnitOfWork, bulk: BulkJob, lead: Lead | None, sequence: Sequence, now: datetime
) -> dict:
    """One lead's row of the report: enrolled, or why not."""
    if lead is None or lead.deleted_at is not None:
        return {"outcome": NOT_ENROLLED, "message": "lead not found"}
    if lead.do_not_contact:
        return {"outcome": DO_NOT_CONTACT, "message": "the lead is marked do not contact"}
    if silenced(lead, sequence):
        return {"outcome": OPTED_OUT, "message": "the lead opted out of every channel of the sequence"}
    try:
        with session.begin_nested():  # a refused lead leaves nothing half-written
            sequences.enroll(
                session=session,
                lead=lead,
                sequence_id=sequence.id,
                enrolled_by=bulk.params["enrolled_by"],
                now=now,
            )
    except DomainError as refused:
        outcome = ALREADY_ENROLLED if refused.code == "already_enrolled" else NOT_ENROLLED
        return {"outcome": outcome, "message": refused.message}
    return {"outcome": ENROLLED}


def run_chunk(*, session: UnitOfWork, job, now: datetime) -> None:
    """The chunk handler: each lead enrolled or its reason recorded, counts added to the bulk job."""
    bulk = session.get(BulkJob, job.subject_id)
    if bulk is None or bulk.status == CANCELLED:
        return
    sequence = session.get(Sequence, bulk.params["sequence_id"])
    lead_ids, offset = job.payload["lead_ids"], job.payload["offset"]
    found = session.scalars(
        sa.select(Lead).where(Lead.clinic_id == bulk.clinic_id, Lead.id.in_(lead_ids)).with_for_update()
    )
    leads = {lead.id: lead for lead in found}
    rows = [
        {"row": position, "lead_id": lead_id, **_enrol_one(session, bulk, leads.get(lead_id), sequence, now)}
        for position, lead_id in enumerate(lead_ids, start=offset + 1)
    ]
    record_rows(session=session, bulk_id=bulk.id, rows=rows)
    refused = [row for row in rows if row["outcome"] != ENROLLED]
    errors = [{"lead_id": row["lead_id"], "error": row["message"]} for row in refused]
    add_counts(session, bulk.id, done=len(rows) - len(refused), failed=len(refused), errors=errors, now=now)
