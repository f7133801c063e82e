"""Merging's event: a duplicate was merged into the lead that stays (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event


@dataclass(frozen=True)
class LeadMerged(Event):
    """`merged_lead_id` was merged into `lead_id`: the fields it filled and the rows it moved, by table."""

    NAME = "lead.merged"
    lead_id: int
    merged_lead_id: int
    filled: list[str]
    moved: dict[str, int]
