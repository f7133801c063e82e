"""Bulk work's event: a bulk job's last chunk was counted (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event


@dataclass(frozen=True)
class BulkCompleted(Event):
    """A bulk job finished: how many items it had, did and failed."""

    NAME = "bulk.completed"
    SUBJECT = "bulk_job"
    bulk_job_id: int
    kind: str
    total: int
    done: int
    failed: int
