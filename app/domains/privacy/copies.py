"""Copies of a lead's person in the job ledger and in stored answers, for erasure
(app/domains/privacy/erasure.py lists every copy).

A job about the lead, its tasks or its messages keeps in `origin` what the rule that made it saw
(the why-trail's conditions: a city, an insurance carrier) and in `payload` what its handler needs:
both keep their shape and ids, their values go. An import's chunk jobs keep the rows as sent,
encrypted in their payload: a finished chunk's rows go entirely (a chunk drops them itself when it
finishes: app/domains/intake/imports.py), an open or gave-up chunk loses the rows that describe the person.
An import's report keeps, for a row refused as a duplicate, the open leads it matched and why (phone,
email, name and date of birth): with the importer's file, why names the erased lead's values.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.auth.instagram.models import InstagramContact
from app.domains.bulk.models import DUPLICATE, BulkJob, BulkJobRow
from app.domains.intake.imports import CHUNK_KIND as IMPORT_CHUNK_KIND
from app.domains.privacy.scrubbing import ids_only, is_persons_row, structure_only
from app.platform import phi
from app.platform.db import UnitOfWork
from app.platform.db.protected import keys_of
from app.platform.idempotency.models import IdempotencyKey
from app.platform.scheduling.models import FINISHED, ScheduledJob

if TYPE_CHECKING:
    from app.domains.leads.models import Lead

_BATCH = 500


def scrub_jobs_of(session: UnitOfWork, subjects: dict[str, list[int]]) -> list[int]:
    """The jobs of the subjects (already cancelled if open): origins to their structure, payloads to
    their ids; returns the jobs' ids (their audit events are the lead's too)."""
    job_ids = []
    for subject_type, ids in subjects.items():
        for start in range(0, len(ids), _BATCH):
            jobs = session.scalars(
                sa.select(ScheduledJob).where(
                    ScheduledJob.subject_type == subject_type,
                    ScheduledJob.subject_id.in_(ids[start : start + _BATCH]),
                )
            )
            for job in jobs:
                job.origin = structure_only(job.origin) if job.origin else job.origin
                job.payload = ids_only(job.payload)
                job_ids.append(job.id)
    return job_ids


def scrub_import_payloads(session: UnitOfWork, lead: Lead) -> int:
    """The clinic's import chunks still holding rows: a finished one's rows dropped, an open or
    gave-up one's rows that made or name the lead replaced by null (the chunk reports such a row
    invalid if it ever runs); returns how many chunks changed. Call before the lead is tombstoned:
    its name, phones and email recognise its rows."""
    keys = keys_of(session)
    made = set(
        session.execute(
            sa.select(BulkJobRow.bulk_job_id, BulkJobRow.row).where(BulkJobRow.lead_id == lead.id)
        )
    )
    recognise = _recogniser(lead)
    changed = 0
    chunks = session.scalars(
        sa.select(ScheduledJob).where(
            ScheduledJob.clinic_id == lead.clinic_id, ScheduledJob.kind == IMPORT_CHUNK_KIND
        )
    )
    for job in chunks:
        payload = job.payload or {}
        if not payload.get("rows"):
            continue
        if job.status in FINISHED:
            job.payload = {**payload, "rows": None}
            changed += 1
            continue
        rows = json.loads(phi.decrypt(payload["rows"], keys=keys))
        first = payload.get("first_row", 1)
        kept = [
            None if (job.subject_id, first + offset) in made or recognise(row) else row
            for offset, row in enumerate(rows)
        ]
        if kept != rows:
            job.payload = {**payload, "rows": phi.encrypt(json.dumps(kept), keys=keys)}
            changed += 1
    return changed


def scrub_import_reports(session: UnitOfWork, lead: Lead) -> int:
    """The clinic's import reports: the rows about the lead (it made them, or repeated its external
    id) lose their message, matches and external id; a row of another import refused as a duplicate
    of the lead keeps the lead's id in `matches` and loses the rest of its entry (why it matched: read
    against the importer's file, the lead's phone, email or date of birth). Returns how many rows."""
    changed = session.execute(
        sa.update(BulkJobRow)
        .where(BulkJobRow.lead_id == lead.id)
        .values(message=None, matches=None, external_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    refused = session.scalars(
        sa.select(BulkJobRow)
        .join(BulkJob, BulkJob.id == BulkJobRow.bulk_job_id)
        .where(
            BulkJob.clinic_id == lead.clinic_id,
            BulkJobRow.outcome == DUPLICATE,
            BulkJobRow.lead_id.is_(None),  # refused for its matches, not for a repeated external id
        )
        .execution_options(yield_per=_BATCH)
    )
    for row in refused:  # `matches` is encrypted: read here, not filtered in SQL
        if not row.matches:
            continue
        matches = [
            ids_only(match) if isinstance(match, dict) and match.get("lead_id") == lead.id else match
            for match in row.matches
        ]
        if matches != row.matches:
            row.matches = matches
            changed += 1
    return changed


def _recogniser(lead: Lead):
    digits = {"".join(c for c in p if c.isdigit())[-10:] for p in (lead.phone, lead.phone_alt) if p}
    names = {
        (first.strip().lower(), last.strip().lower())
        for first, last in (
            (lead.first_name, lead.last_name),
            (lead.patient_first_name, lead.patient_last_name),
        )
        if first and last
    }
    emails = {lead.email.strip().lower()} if lead.email else set()
    return lambda row: is_persons_row(row, emails=emails, phones=digits, names=names)


def erase_idempotent_answers(session: UnitOfWork, clinic_id: int, lead_id: int) -> int:
    """Stored answers (a day's worth) that describe the lead: deleted; a replay then runs anew."""
    doomed = []
    rows = session.execute(
        sa.select(IdempotencyKey.id, IdempotencyKey.response_body).where(
            IdempotencyKey.clinic_id == clinic_id, IdempotencyKey.response_body.is_not(None)
        )
    )
    for key_id, body in rows:
        try:
            answer = json.loads(body)
        except ValueError:
            continue
        if _names_lead(answer, lead_id):
            doomed.append(key_id)
    for chunk in _batches(doomed):
        session.execute(
            sa.delete(IdempotencyKey)
            .where(IdempotencyKey.id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    return len(doomed)


def _names_lead(answer, lead_id: int) -> bool:
    if isinstance(answer, list):
        return any(_names_lead(item, lead_id) for item in answer)
    if not isinstance(answer, dict):
        return False
    if answer.get("lead_id") == lead_id or (answer.get("id") == lead_id and "first_name" in answer):
        return True
    return any(_names_lead(v, lead_id) for v in answer.values() if isinstance(v, dict | list))


def _batches(ids: list):
    for start in range(0, len(ids), _BATCH):
        yield ids[start : start + _BATCH]


def erase_instagram_contacts(session: UnitOfWork, lead_id: int) -> int:
    """Forget the Instagram user(s) the lead is: their scoped id and handle. A DM they send later is
    someone new to the clinic (a new lead), as a text from an erased number finds no lead."""
    return session.execute(sa.delete(InstagramContact).where(InstagramContact.lead_id == lead_id)).rowcount


def chunks(ids: list, size: int = 500):
    """`ids` in slices of `size`: an IN list a database takes whatever the lead's history holds."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
