"""Automation: rules and their versions, the steps they make (the why-trail), and the enrollments of
leads in sequences (a sequence itself: app/domains/sequences/models.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime


class AutomationRule(Base):
    """A clinic's rule: on `trigger`, if every condition holds, schedule `actions` (in priority order).

    The row is the rule's current version; every version, the first included, is also kept in
    `automation_rule_versions`, and a step records the version that made it.
    """

    __tablename__ = "automation_rules"
    __table_args__ = (
        # A default rule is seeded once per clinic; deleting it soft-deletes, so it never comes back.
        sa.Index("uq_automation_rules_default", "clinic_id", "default_key", unique=True),
        sa.Index("ix_automation_rules_active", "clinic_id", "trigger", "active", "priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    trigger: Mapped[str] = mapped_column(sa.String(64))  # an event type, e.g. lead.created, lead.stale
    conditions: Mapped[list] = mapped_column(JSONType, default=list)
    actions: Mapped[list] = mapped_column(JSONType, default=list)
    priority: Mapped[int] = mapped_column(sa.Integer, default=100)  # lower runs first
    stop_processing: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    default_key: Mapped[str | None] = mapped_column(sa.String(64))  # set on the seeded default rules
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    updated_by: Mapped[str] = mapped_column(sa.String(64))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AutomationRuleVersion(Base):
    """One saved version of a rule: what a step scheduled by that version keeps running with."""

    __tablename__ = "automation_rule_versions"
    __table_args__ = (sa.UniqueConstraint("rule_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(sa.ForeignKey("automation_rules.id"))
    version: Mapped[int] = mapped_column(sa.Integer)
    definition: Mapped[dict] = mapped_column(JSONType)  # name, trigger, conditions, actions, priority, ...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(64))


class StepStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time (a ledger job holds it)
    DONE = "done"
    SKIPPED = "skipped"  # held back (contact policy, a closed lead, ...): `result.reason` says why
    CANCELLED = "cancelled"  # the lead replied, converted, was lost, or was unenrolled
    FAILED = "failed"


class AutomationStep(Base):
    """One automated step for a lead, past or pending, and why it exists: the why-trail's row.

    Made by a rule (rule id and version, the event, the conditions as evaluated) or by a
    sequence enrollment (its step number). `result` names what it made (task, notification) or
    why it was held back.
    """

    __tablename__ = "automation_steps"
    __table_args__ = (sa.Index("ix_automation_steps_lead", "lead_id", "status", "run_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    rule_id: Mapped[int | None] = mapped_column(sa.ForeignKey("automation_rules.id"))
    rule_version: Mapped[int | None] = mapped_column(sa.Integer)
    enrollment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sequence_enrollments.id"))
    sequence_step: Mapped[int | None] = mapped_column(sa.Integer)
    event_id: Mapped[int | None] = mapped_column(sa.Integer)
    event_type: Mapped[str | None] = mapped_column(sa.String(64))
    action_type: Mapped[str] = mapped_column(sa.String(32))
    action: Mapped[dict] = mapped_column(JSONType)  # the action as the version defined it
    conditions: Mapped[list] = mapped_column(JSONType, default=list)  # as evaluated: value seen, result
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16))
    result: Mapped[dict] = mapped_column(JSONType, default=dict)
    job_id: Mapped[int | None] = mapped_column(sa.Integer)
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    UNENROLLED = "unenrolled"


class SequenceEnrollment(Base):
    __tablename__ = "sequence_enrollments"
    __table_args__ = (
        # One active enrollment per sequence and lead (a partial index: ended ones may repeat).
        sa.Index(
            "uq_sequence_enrollments_active",
            "sequence_id",
            "lead_id",
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        ),
        sa.Index("ix_sequence_enrollments_lead", "lead_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    sequence_id: Mapped[int] = mapped_column(sa.ForeignKey("sequences.id"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    status: Mapped[str] = mapped_column(sa.String(16))
    current_step: Mapped[int] = mapped_column(sa.Integer, default=0)  # the next step to run (0-based)
    next_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    enrolled_by: Mapped[str] = mapped_column(sa.String(64))  # "user:3", "rule:7"
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(sa.String(64))  # replied, converted, lost, opted_out, ...
    # The steps taken, in order: [{"step", "key", "at", "via": {"event", "event_id"} | None}], the
    # branch's cause on each step a wait led to (None on enrollments made before branching existed).
    path: Mapped[list | None] = mapped_column(JSONType)

    @property
    def position(self) -> str | None:
        """The key of the step the enrollment is at (running, next or waiting), from its path."""
        return (self.path or [{}])[-1].get("key")


class OrphanSweep(Base):
    """Where the orphan sweep (app/domains/automation/orphans.py) is in its walk over the leads, and what
    its passes found: one row, read and advanced under a row lock so two beats take turns."""

    __tablename__ = "orphan_sweeps"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    after_lead_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # the walk's position
    found_this_pass: Mapped[int] = mapped_column(sa.Integer, default=0)
    found_last_pass: Mapped[int | None] = mapped_column(sa.Integer)  # the orphan_leads metric
    last_pass_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tasks_made: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # Leads it found it could not give a next step (each once per reason it found), ever.
    not_helped: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
