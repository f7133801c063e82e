"""How the console says a value to a person: names for the ids of users, sources and stages, lists
and objects as text, times in the clinic's timezone. Pure: the names and the zone are read once per
page by the page's service (story.py) and handed in as `Names`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

# Lead fields whose values are codes (an enum's member), said as words; any other text is shown as typed.
CODED = frozenset(
    ("status", "preferred_contact", "patient_relationship", "treatment_interest", "hesitation_reason",
     "lost_reason", "temperature", "source_category")
)  # fmt: skip
# Ids the console names, by the lead field that holds them, and the label it shows instead of the key.
NAMED_IDS = {"assigned_to_id": ("users", "owner"), "source_id": ("sources", "source")}
TIME_FORMAT = "%a %d %b %Y, %H:%M %Z"


@dataclass(frozen=True)
class Names:
    """What a page needs to name things: users, sources and stages of the clinic, and its zone."""

    zone: ZoneInfo
    users: dict[int, str] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)  # slug -> name


def label(key: str) -> str:
    """A field's key as a heading: `source_id` -> "Source", `patient_dob` -> "Patient dob"."""
    named = NAMED_IDS.get(key)
    text = named[1] if named else key
    return text.replace("_", " ").capitalize()


def code(value: str) -> str:
    """A code as words: `INVISALIGN` -> "Invisalign", `call_now` -> "Call now"."""
    return value.replace("_", " ").capitalize()


def when(value: datetime | str | None, names: Names) -> str:
    """A moment in the clinic's timezone, or "" for none."""
    if value in (None, ""):
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(names.zone).strftime(TIME_FORMAT)


def _is_moment(value: str) -> bool:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    return moment.tzinfo is not None


def say(key: str, value, names: Names) -> str:
    """A lead field's value as text for a person."""
    if value is None:
        return ""
    named = NAMED_IDS.get(key)
    if named is not None:
        found = getattr(names, named[0]).get(value)
        return found if found is not None else f"#{value}"
    if key == "pipeline_stage":
        return names.stages.get(value, code(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(say(key, item, names) for item in value)
    if isinstance(value, dict):
        return _object(value, names)
    if isinstance(value, str) and _is_moment(value):
        return when(value, names)
    if key in CODED and isinstance(value, str):
        return code(value)
    return str(value)


def _object(value: dict, names: Names) -> str:
    """An object as one line: a next best action reads "Call now (new lead, 2 minutes old)"."""
    if "action" in value and "reason" in value:
        text = f"{code(value['action'])} ({value['reason']})"
        return f"{text}, at {when(value['at'], names)}" if value.get("at") else text
    return "; ".join(
        f"{code(k)}: {say(k, v, names)}" for k, v in value.items() if v not in (None, "", [], {})
    )
