"""The default pipeline and which moves between stages are allowed. Pure: no I/O, no clock."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

NEW_LEAD = "new_lead"
TREATMENT_STARTED = "treatment_started"  # the converted stage
LOST = "lost"
PENDING_DECISION = "pending_decision"  # entering it asks why the family hesitates
# Conversion and loss have use cases of their own and must stay terminal.
PROTECTED_TERMINAL_SLUGS = frozenset({TREATMENT_STARTED, LOST})

# Seed 002's stale lead: no activity for this many days (a clinic's `stale_after_days` overrides).
DEFAULT_STALE_AFTER_DAYS = 7

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_]{0,63}$"
COLOR_PATTERN = r"^#[0-9A-Fa-f]{6}$"


@dataclass(frozen=True)
class StageSpec:
    slug: str
    name: str
    color: str
    is_terminal: bool = False
    is_default: bool = False
    max_days_in_stage: int | None = None


DEFAULT_STAGES = (
    StageSpec(NEW_LEAD, "New Lead", "#3B82F6", is_default=True),
    StageSpec("contacted", "Contacted", "#06B6D4"),
    StageSpec("consultation_scheduled", "Consultation Scheduled", "#8B5CF6"),
    StageSpec("consultation_completed", "Consultation Completed", "#A855F7"),
    StageSpec(PENDING_DECISION, "Pending Decision", "#F59E0B", max_days_in_stage=7),
    StageSpec("treatment_accepted", "Treatment Accepted", "#10B981"),
    StageSpec(TREATMENT_STARTED, "Treatment Started", "#059669", is_terminal=True),
    StageSpec(LOST, "Lost", "#6B7280", is_terminal=True),
)


def slugify(name: str) -> str:
    """'Consultation Scheduled!' → 'consultation_scheduled'."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:64]


@dataclass(frozen=True)
class StageView:
    """What a move needs to know about a stage."""

    slug: str
    position: int
    is_terminal: bool


def move_refusal(current: StageView, target: StageView) -> str | None:
    """Why a lead in `current` may not move to `target` (None when it may).

    Leads skip stages forward freely, never move backwards except to lost, and leave a terminal
    stage never. Conversion and loss are checked by their own use cases before this.
    """
    if target.slug == current.slug:
        return f"the lead is already in {current.slug}"
    if current.is_terminal:
        return f"{current.slug} is a terminal stage: the lead cannot leave it"
    if target.slug == LOST:
        return None
    if target.position < current.position:
        return f"moving backwards from {current.slug} to {target.slug} is not allowed (only to lost)"
    return None


def move_targets(current: StageView, stages: list[StageView]) -> list[str]:
    """The stages a person may move a lead in `current` to, the next one first and lost last: every
    stage `move_refusal` allows but treatment_started (a conversion, its own use case)."""
    allowed = [s for s in stages if s.slug != TREATMENT_STARTED and move_refusal(current, s) is None]
    ahead = sorted((s for s in allowed if s.slug != LOST), key=lambda s: s.position)
    return [s.slug for s in ahead] + [s.slug for s in allowed if s.slug == LOST]


def stale_after_days(settings: dict | None) -> int:
    """Days without activity after which an open lead is stale (quiet), from the clinic's settings."""
    return int((settings or {}).get("stale_after_days") or DEFAULT_STALE_AFTER_DAYS)
