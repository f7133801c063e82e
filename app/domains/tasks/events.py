"""The tasks' event: a task went past its due time (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event


@dataclass(frozen=True)
class TaskOverdue(Event):
    """The overdue sweep marked a task overdue (once per task)."""

    NAME = "task.overdue"
    SUBJECT = "task"
    task_id: int
    lead_id: int | None
    assigned_to_id: int | None
    due_at: str
