"""Bulk jobs: one client request processed in chunks by the job ledger."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime
from app.platform.db.protected import EncryptedJSON, EncryptedString

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"
# Kinds of bulk job: a bulk follow-up (app/domains/bulk/service.py), a lead import
# (app/domains/intake/imports.py), a bulk enrolment in a sequence (app/domains/bulk/enrolments.py).
TASKS_CREATE, LEADS_IMPORT, SEQUENCE_ENROLMENT = "tasks.create", "leads.import", "sequences.enroll"


class BulkJob(Base):
    __tablename__ = "bulk_jobs"
    __table_args__ = (sa.Index("ix_bulk_jobs_clinic_created", "clinic_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    kind: Mapped[str] = mapped_column(sa.String(64))  # TASKS_CREATE, LEADS_IMPORT or SEQUENCE_ENROLMENT
    status: Mapped[str] = mapped_column(sa.String(16), default=PENDING)
    total: Mapped[int] = mapped_column(sa.Integer, default=0)
    done: Mapped[int] = mapped_column(sa.Integer, default=0)
    failed: Mapped[int] = mapped_column(sa.Integer, default=0)
    # [{"lead_id": 3, "error": "..."}], the first MAX_ERRORS of them.
    errors: Mapped[list] = mapped_column(JSONType, default=list)
    # What to do with each lead: the resolved task fields, the assignee policy, the round-robin list.
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    chunks: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcomes = None  # not stored: the per-row report's counts, read with the job (bulk/service.py)


# The per-row report's outcomes of the kinds that keep one: an import row, a lead to enrol.
CREATED, DUPLICATE, INVALID = "created", "duplicate", "invalid"
ENROLLED, ALREADY_ENROLLED, OPTED_OUT = "enrolled", "already_enrolled", "opted_out"
DO_NOT_CONTACT, NOT_ENROLLED = (
    "do_not_contact",
    "not_enrolled",
)  # not enrolled: closed, gone, or in another sequence
ROW_OUTCOMES_OF = {
    LEADS_IMPORT: (CREATED, DUPLICATE, INVALID),
    SEQUENCE_ENROLMENT: (ENROLLED, ALREADY_ENROLLED, OPTED_OUT, DO_NOT_CONTACT, NOT_ENROLLED),
}
ROW_OUTCOMES = tuple(outcome for outcomes in ROW_OUTCOMES_OF.values() for outcome in outcomes)


class BulkJobRow(Base):
    """One input row's outcome in a bulk import: created (its lead), duplicate (the lead that already
    had its external id, or the open leads it matches) or invalid (the field and why); or one lead's
    in a bulk enrolment: enrolled, or why not (`message`)."""

    __tablename__ = "bulk_job_rows"

    bulk_job_id: Mapped[int] = mapped_column(sa.ForeignKey("bulk_jobs.id"), primary_key=True)
    row: Mapped[int] = mapped_column(sa.Integer, primary_key=True)  # 1 = the first row sent
    outcome: Mapped[str] = mapped_column(sa.String(16))
    lead_id: Mapped[int | None] = mapped_column(sa.Integer)
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    field: Mapped[str | None] = mapped_column(sa.String(100))
    message: Mapped[str | None] = mapped_column(
        "message_encrypted", EncryptedString, key="message"
    )  # may quote the row's value
    # The open leads a row matched when the import refused duplicates: [{"lead_id", "matched"}], where
    # `matched` says why (phone, email, name_dob): read against the imported row, the lead's values.
    matches: Mapped[list | None] = mapped_column(EncryptedJSON)
