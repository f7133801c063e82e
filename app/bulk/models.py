"""Bulk jobs: one client request processed in chunks by the job ledger."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


class BulkJob(Base):
    __tablename__ = "bulk_jobs"
    __table_args__ = (sa.Index("ix_bulk_jobs_clinic_created", "clinic_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    kind: Mapped[str] = mapped_column(sa.String(64))  # "tasks.create"
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
