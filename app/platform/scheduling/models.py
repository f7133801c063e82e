"""The job ledger: one row per piece of deferred work (an event processing, an automation step, a
timer, a delivery, a bulk chunk, ...), written in the transaction of the change that caused it."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime
from app.platform.db.protected import EMBEDS_TOKENS

PENDING = "pending"  # waiting in the database (due beyond the horizon, or not yet published)
DISPATCHED = "dispatched"  # published to the broker with eta=due_at
DONE = "done"
CANCELLED = "cancelled"
FAILED = "failed"  # no handler for its kind in the process that ran it; an admin may retry it
# Its attempts ran out: the handler failed, or the worker running it died (killed, out of memory, past
# its time limit), max_attempts times. An admin may retry it. An attempt counts when its claim
# commits, before the handler runs, so even a job that kills every worker it runs on ends here.
DEAD = "dead"

STATUSES = (PENDING, DISPATCHED, DONE, CANCELLED, FAILED, DEAD)
GAVE_UP = (FAILED, DEAD)  # final without an effect: what an admin retries
OPEN = (PENDING, DISPATCHED)  # a run may claim these; the others are final
FINISHED = (DONE, CANCELLED)  # purged after settings.purge_done_after_days


_OPEN_ROWS = "status IN ('pending', 'dispatched')"
_GAVE_UP_ROWS = "status IN ('failed', 'dead')"


class ScheduledJob(Base):
    """On PostgreSQL the table is partitioned by month of `created_at` (migration 0031): its primary
    key there is (id, created_at), as PostgreSQL requires of a partitioned table's unique indexes; ids
    still come from one sequence, so `id` alone names a row. That is also why `dedupe_key` is kept
    unique by `ScheduledJobKey`, not by an index of this table (it could only be unique per month)."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (
        # The sweeps' claims (pending rows by due time, dispatched rows by due time) and the due lag:
        # only the open rows are in it, so a claim reads what it takes whatever the ledger's size,
        # and a row that ends done or cancelled leaves it (no new entry for the final row version).
        sa.Index(
            "ix_scheduled_jobs_live_due",
            "status",
            "due_at",
            postgresql_where=sa.text(_OPEN_ROWS),
            sqlite_where=sa.text(_OPEN_ROWS),
        ),
        # The rows an admin may retry (few): found without a scan, by the purge among them.
        sa.Index(
            "ix_scheduled_jobs_gave_up",
            "status",
            postgresql_where=sa.text(_GAVE_UP_ROWS),
            sqlite_where=sa.text(_GAVE_UP_ROWS),
        ),
        sa.Index("ix_scheduled_jobs_subject", "subject_type", "subject_id"),
        sa.Index("ix_scheduled_jobs_clinic_due_at", "clinic_id", "due_at"),
        # A drainer's next row (runner.drain): the oldest open row of a kind, read in index order so
        # the scan stops at the first unlocked row and marks the entries of rows already done dead
        # (a queue table's index otherwise fills with them until vacuum, and every claim reads them).
        sa.Index(
            "ix_scheduled_jobs_open_kind_due",
            "kind",
            "due_at",
            postgresql_where=sa.text(_OPEN_ROWS),
            sqlite_where=sa.text(_OPEN_ROWS),
        ),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int | None] = mapped_column(sa.ForeignKey("clinics.id"))  # None: a system job
    kind: Mapped[str] = mapped_column(sa.String(64))
    queue: Mapped[str] = mapped_column(sa.String(32))
    subject_type: Mapped[str | None] = mapped_column(sa.String(32))
    subject_id: Mapped[int | None] = mapped_column(sa.Integer)
    # A domain may seal part of it with the PHI key (an import's rows): the key rotation finds those.
    payload: Mapped[dict] = mapped_column(JSONType, default=dict, info={EMBEDS_TOKENS: True})
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    max_attempts: Mapped[int | None] = mapped_column(sa.Integer)  # None: settings.job_max_attempts
    dedupe_key: Mapped[str] = mapped_column(sa.String(255))  # unique: ScheduledJobKey
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the attempt in flight was counted; cleared when it records a failure. Set on an open row
    # for less than the redispatch grace: a delivery is about to claim and run it. Set longer: the
    # worker that counted it died (had it run, the row would be done or the attempt's failure recorded).
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    origin: Mapped[dict | None] = mapped_column(JSONType)  # why: rule id and version, event id, ...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # W3C traceparent of the span that wrote the row (None while tracing is off): its run continues it.
    trace_parent: Mapped[str | None] = mapped_column(sa.String(64))

    @property
    def subject(self) -> str | None:
        """`lead:7`, as the API writes it."""
        if self.subject_type is None:
            return None
        return f"{self.subject_type}:{self.subject_id}"

    def __repr__(self) -> str:
        return f"<ScheduledJob {self.id} {self.kind} {self.status} due {self.due_at:%Y-%m-%dT%H:%M:%S}>"


class ScheduledJobKey(Base):
    """The ledger's dedupe keys, one row each, in a table of their own (not partitioned): a unique
    index here is global, so the same dedupe_key scheduled twice makes one row whatever month each
    attempt falls in. Written with its job (same transaction), removed with it by the purge."""

    __tablename__ = "scheduled_job_keys"

    dedupe_key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    job_id: Mapped[int] = mapped_column(sa.Integer)


class LedgerTurn(Base):
    """When each clinic last had a turn on a queue whose kinds are taken in turns (registry's `lane`):
    the claim takes the next row of the clinic that has waited longest (turns.py).
    `clinic_key` is the clinic's id, 0 for system jobs (no clinic). One row per queue and clinic."""

    __tablename__ = "ledger_turns"

    queue: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    clinic_key: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    served_at: Mapped[datetime] = mapped_column(UTCDateTime)
