"""Follow-up tasks (a person's to-do about a lead) and task templates."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domains.leads.models import Lead
from app.platform.db import Base, JSONType, UTCDateTime
from app.platform.db.protected import EncryptedString


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    OVERDUE = "OVERDUE"


OPEN_TASK_STATUSES = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.OVERDUE)
CLOSED_TASK_STATUSES = (TaskStatus.COMPLETED, TaskStatus.CANCELLED)


class TaskPriority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


PRIORITY_RANK = {TaskPriority.URGENT: 0, TaskPriority.HIGH: 1, TaskPriority.NORMAL: 2, TaskPriority.LOW: 3}


class LeadTaskType(StrEnum):
    CALL = "CALL"
    EMAIL = "EMAIL"
    SMS = "SMS"
    FOLLOW_UP = "FOLLOW_UP"
    CONSULTATION_CONFIRM = "CONSULTATION_CONFIRM"
    PAPERWORK_REMINDER = "PAPERWORK_REMINDER"
    CUSTOM = "CUSTOM"


class TaskOutcome(StrEnum):
    """How a completed task ended: what analytics count and the timeline shows."""

    DONE = "done"
    NO_ANSWER = "no_answer"
    RESCHEDULED = "rescheduled"
    NOT_NEEDED = "not_needed"


class Recurrence(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class TaskTemplate(Base):
    __tablename__ = "task_templates"
    __table_args__ = (sa.UniqueConstraint("clinic_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    title: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(32))
    priority: Mapped[str] = mapped_column(sa.String(16), default=TaskPriority.NORMAL)
    due_offset_minutes: Mapped[int] = mapped_column(sa.Integer, default=0)
    description: Mapped[str | None] = mapped_column(sa.Text)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LeadTask(Base):
    __tablename__ = "lead_tasks"
    __table_args__ = (
        # my-tasks: an assignee's open tasks by due time.
        sa.Index("ix_lead_tasks_assignee_status_due", "assigned_to_id", "status", "due_at"),
        # the overdue sweep and the clinic's overdue list.
        sa.Index("ix_lead_tasks_clinic_status_due", "clinic_id", "status", "due_at"),
        sa.Index("ix_lead_tasks_status_due", "status", "due_at"),
        sa.Index("ix_lead_tasks_lead", "lead_id", "status"),
        sa.Index("ix_lead_tasks_series", "series_id", "status"),
        # Analytics: follow-up effectiveness over tasks due in a range (completed ones by outcome),
        # from the index alone.
        sa.Index(
            "ix_lead_tasks_clinic_due",
            "clinic_id",
            "due_at",
            postgresql_include=["status", "completed_at", "assigned_to_id", "lead_id", "outcome"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    # PHI at rest: a title or description merged from a lead's fields names the person and why.
    title: Mapped[str] = mapped_column("title_encrypted", EncryptedString, key="title")
    description: Mapped[str | None] = mapped_column(EncryptedString)
    type: Mapped[str] = mapped_column(sa.String(32))
    priority: Mapped[str] = mapped_column(sa.String(16), default=TaskPriority.NORMAL)
    assigned_to_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the next reminder, for display
    status: Mapped[str] = mapped_column(sa.String(16), default=TaskStatus.PENDING)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    outcome: Mapped[str | None] = mapped_column(sa.String(16))  # a TaskOutcome once completed
    outcome_notes: Mapped[str | None] = mapped_column(EncryptedString)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Minutes after the due time the task escalates if still open (a rule's urgent call: 10);
    # null: the clinic's escalation_hours.
    escalate_after_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    template_id: Mapped[int | None] = mapped_column(sa.ForeignKey("task_templates.id"))
    # Why the task exists: {"kind": "manual" | "template", "by": ...}; a rule's or sequence's step
    # (speed to lead among them) {"kind": "automation", "step_id": 7, "event_id": 3}; "bulk", "sla",
    # "missed_call"; {} for an orphan's follow-up.
    origin: Mapped[dict] = mapped_column(JSONType, default=dict)
    # Overrides the clinic's reminder offsets for this task (null: the clinic's).
    reminder_offsets_minutes: Mapped[list | None] = mapped_column(JSONType)
    recurrence: Mapped[str | None] = mapped_column(sa.String(16))
    recurrence_interval: Mapped[int | None] = mapped_column(sa.Integer)  # every N units; null is 1
    recurrence_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A recurring task's series: the first task's id (null on the first task itself), and the
    # series' own fields and slot, so an edit of one occurrence does not carry to the next.
    series_id: Mapped[int | None] = mapped_column(sa.Integer)
    series: Mapped[dict | None] = mapped_column(JSONType)
    previous_task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lead_tasks.id"))
    # My next call: who holds the task and until when; a lapsed claim is simply free again.
    claimed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped whenever due time or assignee change: reminder jobs of an older revision are void.
    revision: Mapped[int] = mapped_column(sa.Integer, default=1)
    # System-made tasks carry a key so a redelivered job never makes a second one.
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # Read by my-tasks for the lead's next best action (loaded there in one query, never lazily).
    lead: Mapped[Lead] = relationship(Lead, lazy="raise_on_sql", viewonly=True)
